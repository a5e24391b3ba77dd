"""``EmulatorMocks``: Pulumi mocks that create each declared resource on an AWS endpoint.

Under Pulumi's mock runtime every resource registration reaches ``new_resource``. Instead
of inventing an id, the emulator looks up the provisioner for the resource's type, makes
the AWS calls through boto3 (moto on loopback by default, any endpoint by URL), and
returns the real physical id plus the state the program's consumers read (ARNs, ids of
children, URLs). Registrations arrive from several threads at once; a resource is only
registered after everything it depends on has been, so creation order follows the
program's dependency graph.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import pulumi

from infra.emulator.provision import Context, Declared, provisioner_for
from infra.emulator.record import ResourceRecord, redact, unwrap_secrets
from infra.mockrun import (
    STACK_REFERENCE,
    StackNotDeployed,
    invoke_result,
    stack_reference_state,
)

CALLER_IDENTITY = "aws:index/getCallerIdentity:getCallerIdentity"


class EmulatorMocks(pulumi.runtime.Mocks):
    """Creates every custom resource on ``ctx``'s endpoint; records what it made, in order.

    Args:
        ctx: the clients, region and account of this deploy.
        previous: the last deployment record's resources by (type, logical name), used
            to find resources that have no physical name (KMS keys, API deployments).
        progress: called with one line per resource, as it is created or updated.
        references: stack -> recorded outputs, what a StackReference read answers (a
            layer's core, from its deployment record).
        stack: the stack being deployed (named in a refused reference's error).
    """

    def __init__(
        self,
        ctx: Context,
        previous: dict[tuple[str, str], ResourceRecord] | None = None,
        progress: Callable[[str], None] | None = None,
        references: Mapping[str, Mapping[str, Any]] | None = None,
        stack: str = "",
    ):
        self.ctx = ctx
        self.references = dict(references or {})
        self.stack = stack
        self.previous = previous or {}
        self.progress = progress
        # ``captured`` is what infra.mockrun reads to attach inputs to declared resources.
        self.captured: list[pulumi.runtime.MockResourceArgs] = []
        self.created: list[ResourceRecord] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        if args.token == CALLER_IDENTITY:
            identity = self.ctx.client("sts").get_caller_identity()
            return {
                "accountId": identity["Account"],
                "arn": identity["Arn"],
                "userId": identity["UserId"],
                "id": identity["Account"],
            }, []
        return invoke_result(args.token, args.args, self.ctx.account_id, self.ctx.region), []

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        if args.typ == STACK_REFERENCE:
            try:
                return stack_reference_state(args, self.references, self.stack)
            except StackNotDeployed as error:
                # No outputs: the program's require_output fails and deploy raises this.
                with self._lock:
                    self.errors.insert(0, error)
                return error.referenced, {"name": error.referenced, "outputs": {}}
        with self._lock:
            self.captured.append(args)
        if not args.custom:
            return f"{args.name}-component", {}
        try:
            return self._provision(args)
        except BaseException as error:
            with self._lock:
                self.errors.append(error)
            raise

    def _provision(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        provisioner = provisioner_for(args.typ, args.name)
        # Secret inputs arrive wrapped; AWS needs the value, the record must not keep it.
        declared_inputs = dict(args.inputs)
        inputs = unwrap_secrets(declared_inputs)
        previous = self.previous.get((args.typ, args.name))
        result = provisioner.ensure(
            self.ctx,
            Declared(
                type=args.typ, name=args.name, inputs=inputs, protect=False, previous=previous
            ),
        )
        state = {**inputs, **{k: v for k, v in result.state.items() if v is not None}}
        record = ResourceRecord(
            type=args.typ,
            name=args.name,
            component="",
            id=result.id,
            protect=False,
            inputs=redact(declared_inputs, frozenset()),
            state=dict(result.state),
            locator=dict(result.locator),
        )
        with self._lock:
            self.created.append(record)
        if self.progress:
            verb = "updated" if previous is not None else "created"
            self.progress(f"{verb} {args.typ} {args.name} ({result.id})")
        return result.id, state
