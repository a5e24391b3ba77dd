"""A deployment record of the program's declaration, without deploying it.

The gateway is built from a deployment record. Where the service runs against resources
made outside the emulator (the service tests' moto tables and pool, the standalone
records walk-through, the benchmark), :func:`record_from_program` runs the same Pulumi
program under the mock runtime and records what it declares (the REST API, its methods,
scopes, binary media types, stage throttling, web ACL, function) with the user pool bound
to the one those tokens come from. It is the program's own declaration, never a second
description of the API; only the ids of the bound resources are the caller's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.emulator.engine import _plain as plain_value
from infra.emulator.record import (
    DeploymentRecord,
    ResourceRecord,
    current_release,
    now_utc,
    redact,
)
from infra.mockrun import PreviewMocks, preview_state, run_program
from infra.stage import CORE_STACK, STACK_PHASES

USER_POOL = "aws:cognito/userPool:UserPool"
USER_POOL_CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
EMULATOR_ACCOUNT = "123456789012"  # moto's default account


class _BoundMocks(PreviewMocks):
    """Preview ids everywhere, except the resources bound to existing ones."""

    def __init__(
        self,
        bound: Mapping[str, tuple[str, dict[str, Any]]],
        account_id: str,
        references: Mapping[str, Mapping[str, Any]] | None = None,
        stack: str = "",
    ):
        super().__init__(account_id=account_id, references=references, stack=stack)
        self._bound = bound

    def new_resource(self, args: Any) -> tuple[str | None, dict[str, Any]]:
        if args.custom and args.typ in self._bound:
            with self._lock:
                self.captured.append(args)
            rid, state = self._bound[args.typ]
            _, preview = preview_state(
                args.typ, args.name, dict(args.inputs), self.account_id, self.region
            )
            return rid, {**preview, **state}
        return super().new_resource(args)


def record_from_program(
    stack: str,
    *,
    user_pool_id: str,
    user_pool_client_id: str | None = None,
    endpoint_url: str | None = None,
    config: dict[str, Any] | None = None,
    account_id: str = EMULATOR_ACCOUNT,
) -> DeploymentRecord:
    """The record of ``stack`` as the program declares it, its user pool bound to
    ``user_pool_id`` (and app client to ``user_pool_client_id``) on ``endpoint_url``.

    Args:
        config: a flat stack configuration instead of the stage file (a test stage may
            raise the throttle, as a stage file would).

    A layer's record is the hub it stands in (as :func:`infra.emulator.hub.hub_view`
    gives it for a deployment): the core's declaration (from its stage file) first, then
    the layer's, its StackReference answered with the core's outputs.
    """
    region = user_pool_id.split("_", 1)[0]
    bound: dict[str, tuple[str, dict[str, Any]]] = {
        USER_POOL: (
            user_pool_id,
            {
                "id": user_pool_id,
                "arn": f"arn:aws:cognito-idp:{region}:{account_id}:userpool/{user_pool_id}",
                "endpoint": f"cognito-idp.{region}.amazonaws.com/{user_pool_id}",
            },
        )
    }
    if user_pool_client_id:
        bound[USER_POOL_CLIENT] = (user_pool_client_id, {"id": user_pool_client_id})
    core: DeploymentRecord | None = None
    references: dict[str, Mapping[str, Any]] = {}
    if STACK_PHASES.get(stack, 1) > 1:
        core = record_from_program(
            CORE_STACK,
            user_pool_id=user_pool_id,
            user_pool_client_id=user_pool_client_id,
            endpoint_url=endpoint_url,
            account_id=account_id,
        )
        references[CORE_STACK] = core.outputs
    # A layer declares no pool: its own clients (the federated one) keep preview ids.
    mocks = _BoundMocks(bound if core is None else {}, account_id, references, stack)
    run = run_program(stack, config=config, mocks=mocks)
    resources = ([*core.resources] if core else []) + [
        ResourceRecord(
            type=r.type,
            name=r.name,
            component=r.component,
            id=r.id,
            protect=r.protect,
            inputs=_plain(r.inputs),
            state=_plain(r.state),
        )
        for r in run.custom_resources()
    ]
    return DeploymentRecord(
        stack=stack,
        phase=run.stage.phase,
        region=run.stage.region,
        account_id=account_id,
        endpoint_url=endpoint_url,
        target="preview",
        deployed_at=now_utc(),
        program_version="",
        release=current_release(),
        outputs=_plain(run.outputs),
        resources=resources,
        gaps=[],
    )


def _plain(value: Any) -> Any:
    """JSON-able, with the runtime's secrets replaced, as a deployment record keeps them."""
    return redact(plain_value(value), frozenset())
