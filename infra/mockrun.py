"""Run the Pulumi program in-process under Pulumi's mock runtime and capture what it declares.

The preview, the tests, the policy-pack run over a stack and the emulator all use
``run_program``: it loads a stage (from its stage file or a given config), runs
``infra.program.declare`` with a :class:`pulumi.runtime.Mocks` implementation, waits for
every registration, and returns each declared resource (type, logical name, parent
component, inputs as the engine would see them, id and state) plus the resolved outputs.

The default :class:`PreviewMocks` makes up plausible ids and ARNs without any network;
the emulator passes mocks that create each resource on an AWS endpoint instead.

A layer stack (phase 2, 3) reads the core's outputs through a ``pulumi.StackReference``.
Under the mock runtime a reference resolves from ``references`` (stack -> outputs): the
emulator gives the core's deployment record's outputs; the offline preview of a layer
first previews the core and uses its outputs. A reference to a stack that is not there
raises :class:`StackNotDeployed`; nothing is made up.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.config_source import PROJECT, pulumi_config_strings, read_stage_file, stage_from_config
from infra.stage import Stage

PREVIEW_ACCOUNT_ID = "111122223333"
STACK_REFERENCE = "pulumi:pulumi:StackReference"


class StackNotDeployed(RuntimeError):
    """A layer references a stack that has no deployment (its core is missing)."""

    def __init__(self, stack: str, referenced: str):
        self.stack = stack
        self.referenced = referenced
        super().__init__(
            f"{stack} is a layer over {referenced}, which is not deployed here: deploy "
            f"{referenced} first (hub rollout deploy {referenced})"
        )


def stack_reference_state(
    args: pulumi.runtime.MockResourceArgs,
    references: Mapping[str, Mapping[str, Any]],
    stack: str,
) -> tuple[str, dict[str, Any]]:
    """What a ``StackReference`` read answers under the mock runtime: the referenced
    stack's recorded outputs, or :class:`StackNotDeployed`."""
    target = str(args.inputs.get("name") or args.resource_id or args.name)
    outputs = references.get(target)
    if outputs is None:
        raise StackNotDeployed(stack, target)
    return target, {"name": target, "outputs": dict(outputs), "secretOutputNames": []}


@dataclass
class DeclaredResource:
    type: str
    name: str
    urn: str
    parent_urn: str
    custom: bool
    inputs: dict[str, Any]
    id: str = ""
    state: dict[str, Any] = field(default_factory=dict)
    protect: bool = False

    @property
    def component(self) -> str:
        """The logical name of the top-level component this resource belongs to."""
        if not self.parent_urn:
            return self.name if not self.custom else "(stack)"
        return self.parent_urn.rsplit("::", 1)[-1]


@dataclass
class ProgramRun:
    stage: Stage
    resources: list[DeclaredResource]
    outputs: dict[str, Any]

    def custom_resources(self) -> list[DeclaredResource]:
        return [r for r in self.resources if r.custom]

    def of_type(self, type_token: str) -> list[DeclaredResource]:
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str) -> DeclaredResource:
        for r in self.resources:
            if r.name == name:
                return r
        raise KeyError(name)

    def by_component(self) -> dict[str, list[DeclaredResource]]:
        groups: dict[str, list[DeclaredResource]] = {}
        for r in self.custom_resources():
            groups.setdefault(r.component, []).append(r)
        return groups


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that remembers each registration's parent and protect flag."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self._lock = threading.Lock()
        self.registrations: dict[tuple[str, str], tuple[str, str, bool]] = {}

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        with self._lock:
            self.registrations[(request.type, request.name)] = (
                urn,
                request.parent,
                bool(request.protect),
            )
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]


def _arn(service: str, resource: str, account_id: str, region: str = "ap-east-1") -> str:
    return f"arn:aws:{service}:{region}:{account_id}:{resource}"


class PreviewMocks(pulumi.runtime.Mocks):
    """Invented but well-formed ids and state, with no network. Thread-safe."""

    def __init__(
        self,
        account_id: str = PREVIEW_ACCOUNT_ID,
        region: str = "ap-east-1",
        references: Mapping[str, Mapping[str, Any]] | None = None,
        stack: str = "",
    ):
        self.account_id = account_id
        self.region = region
        # stack -> outputs: what StackReference reads resolve to (see run_program)
        self.references: dict[str, Mapping[str, Any]] = dict(references or {})
        self.stack = stack
        self.refused: StackNotDeployed | None = None
        self.captured: list[pulumi.runtime.MockResourceArgs] = []
        self._lock = threading.Lock()

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return invoke_result(args.token, args.args, self.account_id, self.region), []

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        if args.typ == STACK_REFERENCE:
            try:
                return stack_reference_state(args, self.references, self.stack)
            except StackNotDeployed as error:
                # Answer with no outputs (the program's require_output then fails) rather
                # than raise inside the mock monitor; run_program raises this instead.
                self.refused = error
                return error.referenced, {"name": error.referenced, "outputs": {}}
        with self._lock:
            self.captured.append(args)
        if not args.custom:
            return f"{args.name}-component", {}
        return preview_state(args.typ, args.name, dict(args.inputs), self.account_id, self.region)


def invoke_result(
    token: str, _args: dict[str, Any], account_id: str, region: str
) -> dict[str, Any]:
    """Results of the data-source invokes the program makes."""
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {
            "accountId": account_id,
            "arn": f"arn:aws:iam::{account_id}:user/deployer",
            "userId": "AIDAPREVIEW",
            "id": account_id,
        }
    if token == "aws:index/getPartition:getPartition":
        return {
            "partition": "aws",
            "dnsSuffix": "amazonaws.com",
            "reverseDnsPrefix": "com.amazonaws",
            "id": "aws",
        }
    if token == "aws:index/getRegion:getRegion":
        return {
            "name": region,
            "region": region,
            "id": region,
            "endpoint": f"ec2.{region}.amazonaws.com",
            "description": "Asia Pacific (Hong Kong)",
        }
    raise NotImplementedError(f"the program made an invoke the runner does not know: {token}")


def preview_state(
    typ: str, name: str, inputs: dict[str, Any], account_id: str, region: str
) -> tuple[str, dict[str, Any]]:
    """A resource's id and the state its consumers read, invented offline."""
    state = dict(inputs)
    physical = inputs.get("name") or inputs.get("bucket") or name
    rid = str(physical)
    if typ == "aws:kms/key:Key":
        rid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{account_id}/{name}"))
        state.update(keyId=rid, arn=_arn("kms", f"key/{rid}", account_id, region))
    elif typ == "aws:kms/alias:Alias":
        state["arn"] = _arn("kms", str(physical), account_id, region)
    elif typ == "aws:s3/bucket:Bucket":
        state.update(
            bucket=rid,
            arn=f"arn:aws:s3:::{rid}",
            bucketRegionalDomainName=f"{rid}.s3.{region}.amazonaws.com",
        )
    elif typ == "aws:dynamodb/table:Table":
        state["arn"] = _arn("dynamodb", f"table/{rid}", account_id, region)
    elif typ == "aws:iam/role:Role":
        state.update(arn=f"arn:aws:iam::{account_id}:role/{rid}", uniqueId="AROAPREVIEW")
    elif typ == "aws:cloudwatch/logGroup:LogGroup":
        state["arn"] = _arn("logs", f"log-group:{rid}", account_id, region)
    elif typ == "aws:lambda/function:Function":
        arn = _arn("lambda", f"function:{rid}", account_id, region)
        state.update(
            arn=arn,
            invokeArn=f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/"
            f"functions/{arn}/invocations",
        )
    elif typ == "aws:cognito/userPool:UserPool":
        rid = f"{region}_{uuid.uuid5(uuid.NAMESPACE_URL, name).hex[:9]}"
        state.update(
            arn=_arn("cognito-idp", f"userpool/{rid}", account_id, region),
            endpoint=f"cognito-idp.{region}.amazonaws.com/{rid}",
        )
    elif typ == "aws:cognito/userPoolClient:UserPoolClient":
        rid = uuid.uuid5(uuid.NAMESPACE_URL, name).hex[:26]
    elif typ == "aws:apigateway/restApi:RestApi":
        rid = uuid.uuid5(uuid.NAMESPACE_URL, name).hex[:10]
        state.update(
            rootResourceId="rootres",
            arn=f"arn:aws:apigateway:{region}::/restapis/{rid}",
            executionArn=_arn("execute-api", rid, account_id, region),
        )
    elif typ == "aws:apigateway/stage:Stage":
        stage_name = inputs.get("stageName", "v1")
        state.update(
            invokeUrl=f"https://{inputs.get('restApi')}.execute-api.{region}.amazonaws.com/"
            f"{stage_name}",
            arn=f"arn:aws:apigateway:{region}::/restapis/{inputs.get('restApi')}/stages/"
            f"{stage_name}",
        )
        rid = f"ags-{inputs.get('restApi')}-{stage_name}"
    elif typ == "aws:cloudtrail/trail:Trail":
        state["arn"] = _arn("cloudtrail", f"trail/{rid}", account_id, region)
    elif typ == "aws:sns/topic:Topic":
        state["arn"] = _arn("sns", rid, account_id, region)
    elif typ == "aws:wafv2/webAcl:WebAcl":
        state["arn"] = _arn("wafv2", f"regional/webacl/{rid}/preview", account_id, region)
    elif typ == "aws:sqs/queue:Queue":
        # The core's outbox queue URL is an output its layers re-export (require_output).
        state["url"] = f"https://sqs.{region}.amazonaws.com/{account_id}/{rid}"
    elif typ == "aws:rds/instance:Instance" and inputs.get("identifier"):
        # RDS names an instance's ARN by its identifier (what a backup selection names).
        rid = str(inputs["identifier"])
        state["arn"] = _arn("rds", f"db:{rid}", account_id, region)
    elif typ in (
        "aws:apigateway/resource:Resource",
        "aws:apigateway/authorizer:Authorizer",
        "aws:apigateway/deployment:Deployment",
    ):
        rid = uuid.uuid5(uuid.NAMESPACE_URL, name).hex[:6]
    state.setdefault("arn", _arn(typ.split(":")[1].split("/")[0], rid, account_id, region))
    return rid, state


def _reset_pulumi_runtime() -> None:
    pulumi_settings.ROOT.set(None)
    pulumi_settings.SETTINGS.rpc_manager.clear()
    pulumi_settings.SETTINGS.outputs.clear()


def run_program(
    stack: str,
    config: dict[str, Any] | None = None,
    mocks: pulumi.runtime.Mocks | None = None,
    declare_fn: Callable[..., dict[str, Any]] | None = None,
) -> ProgramRun:
    """Run the program for ``stack`` under the mock runtime.

    Args:
        stack: the stack name; its stage file is read unless ``config`` is given.
        config: a flat config mapping (``aws:region``, ``hub:phase``...) to use instead.
        mocks: the Mocks implementation (default: offline :class:`PreviewMocks`; for a
            layer, with the core's previewed outputs as its StackReference answer).
        declare_fn: the program (default ``infra.program.declare``); tests may wrap it.

    Raises:
        StageConfigError: the configuration is invalid; nothing was declared.
        StackNotDeployed: a StackReference named a stack the mocks do not know.
    """
    if declare_fn is None:
        from infra.program import declare

        declare_fn = declare
    flat = config if config is not None else read_stage_file(stack)
    # Parse first: a bad config or a refused region stops before the runtime is touched.
    stage, secrets = stage_from_config(stack, flat)

    from infra.stage import CORE_STACK

    if mocks is None:
        references: dict[str, Mapping[str, Any]] = {}
        if stage.is_layer:
            references[CORE_STACK] = run_program(CORE_STACK).outputs
        mocks = PreviewMocks(references=references, stack=stack)
    known = getattr(mocks, "references", None)
    if stage.is_layer and known is not None and CORE_STACK not in known:
        # Refused before the runtime is touched: nothing is declared.
        raise StackNotDeployed(stack, CORE_STACK)
    monitor = RecordingMonitor(mocks)
    _reset_pulumi_runtime()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(pulumi_config_strings(flat))

    resolved: dict[str, Any] = {}

    def program() -> None:
        outputs = declare_fn(stage, {k: pulumi.Output.secret(str(v)) for k, v in secrets.items()})

        def keep(values: dict[str, Any]) -> None:
            resolved.update(values)

        pulumi.Output.from_input(outputs).apply(keep)

    try:
        _sync_await(run_pulumi_func(program))
    finally:
        refused = getattr(mocks, "refused", None)
        if refused is not None:
            raise refused

    resources: list[DeclaredResource] = []
    by_urn = monitor.get_registered_resources()
    for (typ, name), (urn, parent, protect) in monitor.registrations.items():
        registration = by_urn.get(urn)
        resources.append(
            DeclaredResource(
                type=typ,
                name=name,
                urn=urn,
                parent_urn=parent,
                custom=not typ.startswith(("hub:", "pulumi:")),
                inputs={},
                id=registration.id if registration else "",
                state=dict(registration.state) if registration else {},
                protect=protect,
            )
        )
    captured_inputs = _captured_inputs(mocks)
    for r in resources:
        r.inputs = captured_inputs.get((r.type, r.name), {})
    return ProgramRun(stage=stage, resources=resources, outputs=resolved)


def _captured_inputs(mocks: pulumi.runtime.Mocks) -> dict[tuple[str, str], dict[str, Any]]:
    captured = getattr(mocks, "captured", [])
    return {(a.typ, a.name): dict(a.inputs) for a in captured}
