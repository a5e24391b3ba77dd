"""Deploy and destroy one stack on an AWS-compatible endpoint, and keep its record.

``deploy`` parses the stage first (a refused region or a bad key stops before any AWS
call), runs the program under the mock runtime with :class:`EmulatorMocks`, removes
what an earlier deploy created but the program no longer declares, and saves the
deployment record. It is idempotent: a second deploy onto the same endpoint updates
the same resources. ``destroy`` deletes in reverse creation order; protected resources
(and the resources that only configure them, such as a protected bucket's encryption)
stay unless forced, and the result says which stayed and why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from infra.config_source import read_stage_file, split_namespace, stage_from_config
from infra.emulator.mocks import EmulatorMocks
from infra.emulator.provision import Context, provisioner_for
from infra.emulator.record import (
    DeploymentRecord,
    ResourceRecord,
    current_release,
    now_utc,
    program_version,
    redact,
)
from infra.mockrun import StackNotDeployed, run_program
from infra.stage import CORE_STACK, STACK_PHASES, layers_above

DEFAULT_STATE_DIR = Path(".hub")


class LayerStands(RuntimeError):
    """The core (or a layer) cannot be destroyed while a layer above it is deployed."""

    def __init__(self, stack: str, layers: list[str]):
        self.stack = stack
        self.layers = layers
        super().__init__(
            f"{stack} cannot be destroyed while {', '.join(layers)} "
            f"{'stands' if len(layers) == 1 else 'stand'} on it: destroy "
            f"{', '.join(reversed(layers))} first"
        )


def core_outputs(stack: str, state_dir: Path) -> dict[str, dict[str, Any]]:
    """What a layer's StackReference reads: the core's recorded outputs.

    Raises:
        StackNotDeployed: ``stack`` is a layer and the core has no deployment record.
    """
    if STACK_PHASES.get(stack, 1) == 1:
        return {}
    core = DeploymentRecord.load(CORE_STACK, state_dir)
    if core is None or core.status != "deployed":
        raise StackNotDeployed(stack, CORE_STACK)
    return {CORE_STACK: core.outputs}


def standing_layers(stack: str, state_dir: Path) -> list[str]:
    """The layers above ``stack`` that have a deployment record, lowest first."""
    if stack not in STACK_PHASES:
        return []
    return [s for s in layers_above(stack) if DeploymentRecord.load(s, state_dir) is not None]


@dataclass
class DestroyResult:
    """What ``destroy`` removed, what stayed (and why), and what failed."""

    stack: str
    deleted: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)  # (logical name, reason)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (logical name, error)
    record_removed: bool = False

    @property
    def complete(self) -> bool:
        return not self.kept and not self.failed


def deploy(
    stack: str,
    *,
    endpoint_url: str | None,
    state_dir: Path = DEFAULT_STATE_DIR,
    config: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    endpoints: Mapping[str, str] | None = None,
) -> DeploymentRecord:
    """Create or update every resource of ``stack`` on ``endpoint_url``; save the record.

    Args:
        stack: the stack name; its stage file is read unless ``config`` is given.
        endpoint_url: the AWS-compatible endpoint (``None``: boto3's default resolution,
            which honours ``AWS_ENDPOINT_URL``).
        state_dir: where deployment records live (``<state_dir>/deployments``).
        config: a flat stack configuration to use instead of the stage file.
        progress: called with one line per resource and per phase of the deploy.
        endpoints: per-service endpoints (boto3 service names) that replace
            ``endpoint_url`` for those services, e.g. S3 and KMS on LocalStack with the
            rest on moto; kept in the record.

    Raises:
        StageConfigError: the configuration is invalid or targets another region;
            raised before any AWS call.
        StackNotDeployed: ``stack`` is a layer and its core has no deployment here;
            raised before any AWS call.
        UnsupportedResourceType: the program declared a type the emulator cannot create.
        botocore.exceptions.ClientError: the endpoint refused a call.
    """
    flat = config if config is not None else read_stage_file(stack)
    stage, _ = stage_from_config(stack, flat)
    references = core_outputs(stack, state_dir)
    secret_values = _secret_values(flat)
    previous = DeploymentRecord.load(stack, state_dir)
    previous_by_key = {(r.type, r.name): r for r in previous.resources} if previous else {}

    ctx = Context(endpoint_url, stage.region, endpoints)
    ctx.account_id = ctx.client("sts").get_caller_identity()["Account"]
    mocks = EmulatorMocks(ctx, previous_by_key, progress, references, stack)
    try:
        run = run_program(stack, config=flat, mocks=mocks)
    except Exception as error:
        raise (mocks.errors[0] if mocks.errors else error) from None
    if mocks.errors:
        raise mocks.errors[0]

    declared = {(r.type, r.name): r for r in run.resources}
    resources: list[ResourceRecord] = []
    for created in mocks.created:
        d = declared.get((created.type, created.name))
        created.component = d.component if d else ""
        created.protect = d.protect if d else False
        created.inputs = redact(_plain(created.inputs), secret_values)
        created.state = redact(_plain(created.state), secret_values)
        resources.append(created)

    current_keys = {(r.type, r.name) for r in resources}
    stale = [
        r for r in (previous.resources if previous else []) if (r.type, r.name) not in current_keys
    ]
    replaced = _replaced_deployments(previous_by_key, resources)
    leftovers = _remove(ctx, list(reversed(stale)) + replaced, force=False, progress=progress)

    record = DeploymentRecord(
        stack=stack,
        phase=stage.phase,
        region=stage.region,
        account_id=ctx.account_id,
        endpoint_url=endpoint_url,
        endpoints=dict(endpoints or {}),
        target="emulator",
        deployed_at=now_utc(),
        program_version=program_version(),
        release=current_release(),
        outputs=redact(_plain(run.outputs), secret_values),
        resources=resources + leftovers,
        gaps=sorted(ctx.gaps(), key=lambda g: (g.type, g.resource)),
    )
    record.save(state_dir)
    return record


def destroy(
    stack: str,
    *,
    endpoint_url: str | None,
    state_dir: Path = DEFAULT_STATE_DIR,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    endpoints: Mapping[str, str] | None = None,
) -> DestroyResult:
    """Delete what the last deploy of ``stack`` created, newest first.

    Protected resources, and resources that only configure a protected one, stay unless
    ``force``; the record then keeps just what stayed, so a later forced destroy can
    finish the job. Without a record there is nothing to destroy. ``endpoints`` defaults
    to the per-service endpoints the record was deployed with.

    Raises:
        LayerStands: a layer above ``stack`` is still deployed (the core cannot go while
            a layer stands on it); nothing was deleted.
    """
    layers = standing_layers(stack, state_dir)
    if layers:
        raise LayerStands(stack, layers)
    result = DestroyResult(stack=stack)
    record = DeploymentRecord.load(stack, state_dir)
    if record is None:
        result.record_removed = True
        return result
    ctx = Context(endpoint_url, record.region, record.endpoints if endpoints is None else endpoints)
    ctx.account_id = record.account_id

    kept_ids: set[str] = set()
    keep: dict[tuple[str, str], str] = {}
    # What a protected resource cannot exist without (AWS refuses to delete it while in
    # use: a database's parameter and subnet groups) stays with it.
    held = {
        used: r.id
        for r in record.resources
        if r.protect and not force
        for used in provisioner_for(r.type, r.name).holds(r)
    }
    for r in record.resources:  # creation order: what a resource configures comes first
        if force:
            break
        attached = provisioner_for(r.type, r.name).attached_to(r)
        if r.protect:
            keep[(r.type, r.name)] = "protected (protect=True); use --force to delete"
            kept_ids.add(r.id)
        elif attached and attached in kept_ids:
            keep[(r.type, r.name)] = f"configures a protected resource ({attached})"
            kept_ids.add(r.id)
        elif r.id in held:
            keep[(r.type, r.name)] = f"used by a protected resource ({held[r.id]})"
            kept_ids.add(r.id)

    remaining: list[ResourceRecord] = []
    for r in reversed(record.resources):
        reason = keep.get((r.type, r.name))
        if reason:
            result.kept.append((r.name, reason))
            remaining.append(r)
            continue
        try:
            provisioner_for(r.type, r.name).delete(ctx, r)
        except (ClientError, BotoCoreError) as error:
            result.failed.append((r.name, str(error)))
            remaining.append(r)
            continue
        result.deleted.append(f"{r.type} {r.name}")
        if progress:
            progress(f"deleted {r.type} {r.name} ({r.id})")

    path = DeploymentRecord.path_for(stack, state_dir)
    if not remaining:
        path.unlink(missing_ok=True)
        result.record_removed = True
    else:
        record.resources = list(reversed(remaining))
        record.status = "partially-destroyed"
        record.save(state_dir)
    return result


def _remove(
    ctx: Context,
    resources: list[ResourceRecord],
    *,
    force: bool,
    progress: Callable[[str], None] | None,
) -> list[ResourceRecord]:
    """Delete resources an earlier deploy made that this one no longer declares.

    Returns the protected ones, which stay (and stay in the record) unless forced.
    """
    kept: list[ResourceRecord] = []
    for r in resources:
        if r.protect and not force:
            kept.append(r)
            if progress:
                progress(f"kept {r.type} {r.name}: no longer declared but protected")
            continue
        provisioner_for(r.type, r.name).delete(ctx, r)
        if progress:
            progress(f"deleted {r.type} {r.name} ({r.id}): no longer declared")
    return kept


def _replaced_deployments(
    previous: dict[tuple[str, str], ResourceRecord], resources: list[ResourceRecord]
) -> list[ResourceRecord]:
    """API deployments replaced by this deploy (a new id under the same logical name)."""
    out = []
    for r in resources:
        before = previous.get((r.type, r.name))
        if (
            r.type == "aws:apigateway/deployment:Deployment"
            and before is not None
            and before.id != r.id
        ):
            out.append(before)
    return out


def _secret_values(flat: dict[str, Any]) -> frozenset[str]:
    _, _, secrets = split_namespace(flat)
    return frozenset(str(v) for v in secrets.values() if v)


def _plain(value: Any) -> Any:
    """JSON-able copy of inputs/state: assets and archives become their path."""
    import pulumi

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, pulumi.FileArchive | pulumi.FileAsset):
        return {"fileArchive" if isinstance(value, pulumi.FileArchive) else "fileAsset": value.path}
    if isinstance(value, pulumi.Archive | pulumi.Asset):
        return {"asset": type(value).__name__}
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
