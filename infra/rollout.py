"""Promotion, phase by phase: the gate, the policy check, the deploy, the verification,
and the record of each step.

:func:`promote` is what ``hub rollout promote`` runs. In order, and stopping at the
first refusal:

1. the gate (:func:`promotion_refusal`): promoting to phase N needs phase N-1 deployed,
   running and verified with the release being promoted, and the deployed core's
   capacity at or above phase N's floor (its stage's ``hub:capacity``, ledger trails
   included: the layers share the core's function, API stage and ledger);
2. the policy pack over the program's declared inputs (:func:`check_policies`); it fails
   closed: any blocking finding, a pack that answers nothing, or a pack that raises
   stops the promotion before anything is deployed;
3. the deploy, through a :class:`Deployer`: :class:`EmulatorDeployer` (moto or
   LocalStack) or :class:`PulumiDeployer` (real AWS through Pulumi's Automation API).
   Both return and save a :class:`~infra.emulator.record.DeploymentRecord` listing every
   resource they deployed, so verification reads the same evidence on either;
4. the post-deploy verification (:func:`verify_deployment`), whose result is remembered
   for this exact deployment;
5. the outcome, appended to ``<state_dir>/rollout.json``.

Rollout state is kept in ``<state_dir>/rollout.json``. A phase counts as verified only
for the exact deployment that was verified (same release and deploy time as its current
record), so a redeploy after verification needs a new verification. A stack deployed
onto an emulator that is gone (a stopped local platform, a moto that no longer answers)
is reported as not running, never as deployed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from infra.config_source import (
    PROJECT,
    ROOT,
    SECRET_KEY_OIDC,
    read_stage_file,
    split_namespace,
)
from infra.emulator.local import read_local_json
from infra.emulator.record import (
    SECRET_PLACEHOLDER,
    DeploymentRecord,
    ResourceRecord,
    current_release,
    now_utc,
    program_version,
    redact,
)
from infra.emulator.server import endpoint_reachable
from infra.stage import CORE_STACK, STACK_PHASES, Stage, parse_stage

if TYPE_CHECKING:
    from infra.policies.pack import Finding
    from infra.verify import VerifyReport

ROLLOUT_FILE = "rollout.json"
Progress = Callable[[str], None]

# --------------------------------------------------------------------------- state


def load_state(state_dir: Path) -> dict[str, Any]:
    path = Path(state_dir) / ROLLOUT_FILE
    if not path.is_file():
        return {"stacks": {}, "promotions": []}
    data: dict[str, Any] = json.loads(path.read_text())
    data.setdefault("stacks", {})
    data.setdefault("promotions", [])
    return data


def save_state(state_dir: Path, state: dict[str, Any]) -> Path:
    path = Path(state_dir) / ROLLOUT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def record_verification(
    state_dir: Path,
    record: DeploymentRecord,
    *,
    passed: bool,
    failed_checks: Sequence[str],
    report_paths: Sequence[str],
) -> None:
    """Remember that this exact deployment of ``record.stack`` was verified (or failed)."""
    state = load_state(state_dir)
    state["stacks"][record.stack] = {
        "release": record.release,
        "deployed_at": record.deployed_at,
        "verified": passed,
        "verified_at": now_utc(),
        "failed_checks": list(failed_checks),
        "reports": list(report_paths),
    }
    save_state(state_dir, state)


def record_promotion(state_dir: Path, entry: Mapping[str, Any]) -> None:
    state = load_state(state_dir)
    state["promotions"].append({"at": now_utc(), **entry})
    save_state(state_dir, state)


# ---------------------------------------------------------------------- phase status

StackState = Literal["deployed", "not deployed", "not running", "partially-destroyed"]
Reachable = Callable[[str], bool]


@dataclass(frozen=True)
class PhaseStatus:
    """One phase as the rollout sees it.

    ``state`` is ``deployed`` only when the stack's last deploy stands and, for an
    emulator target, its emulator still runs; ``not running`` says the emulator that
    held it is gone (``note`` says how that is known).
    """

    stack: str
    phase: int
    state: StackState
    release: str | None
    deployed_at: str | None
    target: str | None
    verified: bool
    verified_at: str | None
    failed_checks: tuple[str, ...]
    note: str = ""

    @property
    def deployed(self) -> bool:
        return self.state == "deployed"

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "phase": self.phase,
            "state": self.state,
            "deployed": self.deployed,
            "release": self.release,
            "deployed_at": self.deployed_at,
            "target": self.target,
            "verified": self.verified,
            "verified_at": self.verified_at,
            "failed_checks": list(self.failed_checks),
            "note": self.note,
        }


def emulator_gone(record: DeploymentRecord, state_dir: Path, reachable: Reachable) -> str | None:
    """Why the emulator holding ``record``'s stack is known to be gone, or None.

    Known from ``local.json`` (the local platform on that endpoint was stopped), else
    from the endpoint itself (nothing accepts connections there). A record without an
    endpoint (boto3's default resolution) cannot be checked and counts as running.
    """
    if record.target != "emulator" or not record.endpoint_url:
        return None
    local = read_local_json(state_dir) or {}
    if local.get("emulatorEndpoint") == record.endpoint_url and local.get("status") == "stopped":
        return f"the local platform on {record.endpoint_url} stopped at {local.get('stoppedAt')}"
    if not reachable(record.endpoint_url):
        return f"nothing answers at {record.endpoint_url} (its emulator is gone)"
    return None


def phase_status(
    stack: str, state_dir: Path, *, reachable: Reachable = endpoint_reachable
) -> PhaseStatus:
    """The phase of ``stack``: its record, whether it still runs, and its verification."""
    record = DeploymentRecord.load(stack, state_dir)
    entry = load_state(state_dir)["stacks"].get(stack, {})
    state: StackState = "not deployed"
    note = ""
    if record is not None:
        gone = emulator_gone(record, state_dir, reachable)
        if gone:
            state, note = "not running", gone
        elif record.status == "deployed":
            state = "deployed"
        else:
            state = "partially-destroyed"
    same_deployment = (
        record is not None
        and entry.get("release") == record.release
        and entry.get("deployed_at") == record.deployed_at
    )
    return PhaseStatus(
        stack=stack,
        phase=STACK_PHASES[stack],
        state=state,
        release=record.release if record else None,
        deployed_at=record.deployed_at if record else None,
        target=record.target if record else None,
        verified=bool(state == "deployed" and same_deployment and entry.get("verified")),
        verified_at=entry.get("verified_at") if same_deployment else None,
        failed_checks=tuple(entry.get("failed_checks", ())) if same_deployment else (),
        note=note,
    )


def rollout_status(
    state_dir: Path, *, reachable: Reachable = endpoint_reachable
) -> list[PhaseStatus]:
    """Every phase, in order; each endpoint is probed once."""
    probed: dict[str, bool] = {}

    def once(endpoint: str) -> bool:
        if endpoint not in probed:
            probed[endpoint] = reachable(endpoint)
        return probed[endpoint]

    return [phase_status(stack, state_dir, reachable=once) for stack in STACK_PHASES]


def previous_stack(stack: str) -> str | None:
    phase = STACK_PHASES[stack]
    return next((s for s, p in STACK_PHASES.items() if p == phase - 1), None)


def promotion_refusal(
    target: str, state_dir: Path, release: str, *, reachable: Reachable = endpoint_reachable
) -> str | None:
    """Why promoting ``release`` to ``target`` is refused, or None when it may proceed."""
    before = previous_stack(target)
    if before is None:
        return None
    status = phase_status(before, state_dir, reachable=reachable)
    if status.state == "not running":
        return f"{before} (phase {status.phase}) is not running: {status.note}"
    if not status.deployed:
        return f"{before} (phase {status.phase}) is not deployed; promote to it first"
    if status.release != release:
        return (
            f"{before} runs release {status.release}, not {release}; promote this "
            f"release to {before} first"
        )
    if not status.verified:
        why = f" (failed checks: {', '.join(status.failed_checks)})" if status.failed_checks else ""
        return f"{before} (phase {status.phase}) is not verified for release {release}{why}"
    return capacity_refusal(target, state_dir)


def deployed_capacity(core: DeploymentRecord) -> tuple[float, float, float, float] | None:
    """(reserved concurrency, rate, burst, ledger trails) the core's function and API stage
    were deployed with, read from its record; None when the record does not say."""
    try:
        function = core.resource("service-api-function").inputs
        settings = core.resource("service-throttling").inputs["settings"]
        return (
            float(function["reservedConcurrentExecutions"]),
            float(settings["throttlingRateLimit"]),
            float(settings["throttlingBurstLimit"]),
            float(function["environment"]["variables"]["HUB_LEDGER_TRAILS"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def capacity_refusal(target: str, state_dir: Path) -> str | None:
    """Why the deployed core cannot carry ``target``'s phase, or None.

    The layers share the core's function, API stage and audit ledger, so capacity lives in
    the core's settings; a layer's ``hub:capacity`` (reserved concurrency, rate, burst,
    ledger trails) is its phase's floor, which the deployed core must meet before the
    layer is promoted.
    """
    if target == CORE_STACK:
        return None
    core = DeploymentRecord.load(CORE_STACK, state_dir)
    if core is None:
        return f"{CORE_STACK} (the core) is not deployed"
    floor_stage = _stage_for_pulumi(target)[0].capacity
    floor = (
        float(floor_stage.lambda_reserved_concurrency),
        float(floor_stage.api_throttle_rate_limit),
        float(floor_stage.api_throttle_burst_limit),
        float(floor_stage.ledger_trails),
    )
    deployed = deployed_capacity(core)
    if deployed is None or any(d < f for d, f in zip(deployed, floor, strict=True)):
        shown = "unknown" if deployed is None else "/".join(f"{v:g}" for v in deployed)
        return (
            f"the core's capacity (reserved concurrency/rate/burst/ledger trails {shown}) is "
            f"below {target}'s floor ({'/'.join(f'{v:g}' for v in floor)}): raise "
            f"hub:capacity in stages/Pulumi.{CORE_STACK}.yaml and promote the core first"
        )
    return None


# --------------------------------------------------------------------- verification


@dataclass(frozen=True)
class Verification:
    """The post-deploy checks of one deployment, and where their reports were written."""

    stack: str
    passed: bool
    failed_checks: tuple[str, ...]
    report_paths: tuple[str, ...]
    report: VerifyReport
    # the report's place in the history (digest, signature, previous, diff), and what
    # could not be done (an unsigned report, a diagram not drawn)
    history: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "passed": self.passed,
            "failed_checks": list(self.failed_checks),
            "reports": list(self.report_paths),
            "history": dict(self.history),
            "notes": list(self.notes),
            "report": self.report.to_dict(),
        }


def verify_deployment(
    record: DeploymentRecord,
    *,
    endpoint_url: str | None,
    state_dir: Path,
    report_dir: Path | None = None,
) -> Verification:
    """Run the post-deploy checks on ``record``'s deployment (the audit ledger's
    integrity included), write the reports (default ``<state_dir>/reports/<stack>``: JSON,
    Markdown, HTML, PDF and the stack's diagram), keep the report in the history (signed
    with the hub's ledger key, archived in its Object Lock audit bucket, diffed with the
    previous one) and remember the result for this exact deployment. A layer is checked
    together with the core it stands on (:func:`infra.emulator.hub.hub_view`), and its
    report is signed and archived with the core's ledger key and audit bucket (the
    ``signingKeyArn`` and ``auditBucketName`` it re-exports: a layer owns neither).

    Args:
        endpoint_url: where the deployment lives (an emulator's URL); None for AWS.
    """
    from infra.compliance.write import signer_and_archive, write_stack_report
    from infra.emulator.hub import verification_target
    from infra.verify import verify_stack
    from infra.verify.clients import ClientFactory

    clients = ClientFactory(
        endpoint_url=endpoint_url,
        region=str(record.outputs.get("region") or record.region),
        endpoints=record.endpoints or None,
    )
    # A layer is checked with the core it references (and the layers below it): its own
    # resources and, through the outputs it re-exports, the core's; the core is checked
    # as the layers standing on it leave it (their providers on its pool).
    view, stage = verification_target(record, state_dir)
    report = verify_stack(view, endpoint_url=endpoint_url, stage=stage, clients=clients)
    signer, archive = signer_and_archive(view, clients)
    written = write_stack_report(
        report,
        view,
        report_dir or _reports(state_dir, record),
        state_dir=state_dir,
        signer=signer,
        archive=archive,
    )
    paths = tuple(str(p) for p in written.paths)
    failed = tuple(sorted({f"{c.id} ({c.resource})" for c in report.failed}))
    record_verification(
        state_dir, record, passed=report.passed, failed_checks=failed, report_paths=paths
    )
    return Verification(
        record.stack,
        report.passed,
        failed,
        paths,
        report,
        written.kept.to_json(),
        written.notes,
    )


def _reports(state_dir: Path, record: DeploymentRecord) -> Path:
    return Path(state_dir) / "reports" / record.stack


# ------------------------------------------------------------------------ deployers


class Deployer(Protocol):
    """Deploys one stack somewhere and records every resource it deployed."""

    @property
    def target(self) -> str:
        """``emulator`` or ``pulumi``: what the record's ``target`` says."""

    @property
    def endpoint_url(self) -> str | None:
        """Where the deployment can be read back (an emulator's URL); None for AWS."""

    def deploy(
        self, stack: str, *, state_dir: Path, progress: Progress | None = None
    ) -> DeploymentRecord:
        """Deploy ``stack``, save its record under ``state_dir`` and return it.

        Raises:
            StageConfigError: the stage is invalid; raised before anything is deployed.
            DeployFailed: the deployment itself failed.
        """


class DeployFailed(RuntimeError):
    """A deploy did not complete; the message says where it stopped."""


class PulumiUnavailable(DeployFailed):
    """The Pulumi CLI, which the Automation API drives, is not installed."""


@dataclass(frozen=True)
class EmulatorDeployer:
    """Deploys through :func:`infra.emulator.deploy` onto an AWS-compatible endpoint."""

    endpoint_url: str | None
    endpoints: Mapping[str, str] | None = None
    config: Mapping[str, Any] | None = None
    target: str = "emulator"

    def deploy(
        self, stack: str, *, state_dir: Path, progress: Progress | None = None
    ) -> DeploymentRecord:
        from infra.emulator import deploy

        return deploy(
            stack,
            endpoint_url=self.endpoint_url,
            endpoints=self.endpoints,
            state_dir=state_dir,
            config=dict(self.config) if self.config is not None else None,
            progress=progress,
        )


class OutputValueLike(Protocol):
    @property
    def value(self) -> Any: ...

    @property
    def secret(self) -> bool: ...


class UpResultLike(Protocol):
    @property
    def outputs(self) -> Mapping[str, OutputValueLike]: ...


class ExportedDeploymentLike(Protocol):
    @property
    def deployment(self) -> Mapping[str, Any] | None: ...


class WorkspaceStack(Protocol):
    """The part of ``pulumi.automation.Stack`` the Pulumi deployer uses."""

    def up(self, *, on_output: Callable[[str], Any] | None = None) -> UpResultLike: ...

    def export_stack(self) -> ExportedDeploymentLike: ...


StackSelector = Callable[[str, Path], WorkspaceStack]


def select_with_automation_api(stack: str, work_dir: Path) -> WorkspaceStack:
    """The stack through Pulumi's Automation API, as ``pulumi stack select`` would."""
    from pulumi import automation

    selected: WorkspaceStack = automation.select_stack(stack_name=stack, work_dir=str(work_dir))
    return selected


@dataclass(frozen=True)
class PulumiDeployer:
    """Deploys through Pulumi's Automation API (``pulumi up`` on the project) and records
    the resources the engine's state holds afterwards (``stack.export_stack()``).

    Args:
        work_dir: the Pulumi project (``Pulumi.yaml``).
        select: opens the stack; tests pass a fake workspace.
        which: finds the Pulumi CLI (default: ``shutil.which``, looked up when deploying).
    """

    work_dir: Path = ROOT
    select: StackSelector = select_with_automation_api
    which: Callable[[str], str | None] | None = None
    target: str = "pulumi"
    endpoint_url: str | None = None

    def deploy(
        self, stack: str, *, state_dir: Path, progress: Progress | None = None
    ) -> DeploymentRecord:
        from pulumi.automation.errors import CommandError, InvalidVersionError

        if (self.which or shutil.which)("pulumi") is None:
            raise PulumiUnavailable(
                "the Pulumi CLI is not installed (no `pulumi` on PATH); the pulumi target "
                "drives it through the Automation API: install it from "
                "https://www.pulumi.com/docs/install/ or use the emulator target"
            )
        stage, secrets = _stage_for_pulumi(stack)
        try:
            selected = self.select(stack, self.work_dir)
            result = selected.up(on_output=progress)
            exported = selected.export_stack()
        except (CommandError, InvalidVersionError, OSError) as error:
            raise DeployFailed(f"pulumi up failed for {stack}: {error}") from error
        record = record_from_pulumi_state(
            stack,
            stage,
            outputs=result.outputs,
            deployment=exported.deployment or {},
            secrets=secrets,
        )
        record.save(state_dir)
        return record


def _stage_for_pulumi(stack: str) -> tuple[Stage, frozenset[str]]:
    """The stage from its file, without needing the decrypted secrets the engine holds
    (``pulumi config set --secret`` leaves them encrypted in the file)."""
    flat = read_stage_file(stack)
    secret_key = f"{PROJECT}:{SECRET_KEY_OIDC}"
    secret_value = flat.get(secret_key)
    public = {k: v for k, v in flat.items() if k != secret_key}
    region, raw, _ = split_namespace(public)
    secrets: frozenset[str] = frozenset()
    if isinstance(secret_value, Mapping) and "secure" not in secret_value:
        secrets = frozenset(str(v) for v in secret_value.values() if v)
    return parse_stage(stack, region, raw), secrets


STACK_TYPE = "pulumi:pulumi:Stack"
_ENGINE_TYPES = ("pulumi:pulumi:", "pulumi:providers:")


def record_from_pulumi_state(
    stack: str,
    stage: Stage,
    *,
    outputs: Mapping[str, OutputValueLike],
    deployment: Mapping[str, Any],
    secrets: Iterable[str] = (),
) -> DeploymentRecord:
    """The deployment record of a ``pulumi up``: every custom resource the engine's state
    holds, with its type, logical name, component, physical id, protect flag, declared
    inputs and state, secrets redacted.

    Args:
        outputs: the stack outputs (``UpResult.outputs``); secret ones are redacted.
        deployment: ``Deployment.deployment`` from ``stack.export_stack()`` (format v3:
            ``resources`` with ``urn``, ``type``, ``id``, ``custom``, ``parent``,
            ``protect``, ``inputs``, ``outputs``; the CLI exports secrets decrypted).
        secrets: known secret values (the stage's OIDC client secrets) to redact wherever
            they appear.
    """
    known = frozenset(s for s in secrets if s)
    resources = [
        _resource_from_state(item, known)
        for item in deployment.get("resources") or []
        if item.get("custom") and not item.get("delete") and not _engine_type(item)
    ]
    plain_outputs = {
        key: SECRET_PLACEHOLDER if value.secret else redact(value.value, known)
        for key, value in outputs.items()
    }
    return DeploymentRecord(
        stack=stack,
        phase=stage.phase,
        region=stage.region,
        account_id=_account_of(resources, plain_outputs),
        endpoint_url=None,
        target="pulumi",
        deployed_at=now_utc(),
        program_version=program_version(),
        release=current_release(),
        outputs=plain_outputs,
        resources=resources,
        # AWS enforces every declared property itself: nothing is left to a covering check
        gaps=[],
    )


def _engine_type(item: Mapping[str, Any]) -> bool:
    return str(item.get("type", "")).startswith(_ENGINE_TYPES)


def _urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _urn_type(urn: str) -> str:
    # urn:pulumi:<stack>::<project>::<parent types$>type::<name>
    parts = urn.split("::")
    return parts[-2].rsplit("$", 1)[-1] if len(parts) >= 4 else ""


def _component_of(parent: str) -> str:
    """As the mock runtime names it: the parent component's logical name, ``(stack)``
    for a resource declared at the top of the program."""
    if not parent or _urn_type(parent) == STACK_TYPE:
        return "(stack)"
    return _urn_name(parent)


def _resource_from_state(item: Mapping[str, Any], secrets: frozenset[str]) -> ResourceRecord:
    urn = str(item["urn"])
    inputs = {k: v for k, v in dict(item.get("inputs") or {}).items() if k != "__defaults"}
    return ResourceRecord(
        type=str(item["type"]),
        name=_urn_name(urn),
        component=_component_of(str(item.get("parent") or "")),
        id=str(item.get("id") or ""),
        protect=bool(item.get("protect", False)),
        inputs=redact(inputs, secrets),
        state=redact(dict(item.get("outputs") or {}), secrets),
        locator={"urn": urn},
    )


def _account_of(resources: Sequence[ResourceRecord], outputs: Mapping[str, Any]) -> str:
    """The account id from the first regional ARN the deployment holds."""
    candidates = [*outputs.values(), *(r.state.get("arn") for r in resources)]
    for value in candidates:
        parts = str(value or "").split(":")
        if len(parts) >= 6 and parts[0] == "arn" and parts[4].isdigit():
            return parts[4]
    return ""


# ------------------------------------------------------------------------ the gate


@dataclass(frozen=True)
class PolicyCheck:
    """The policy pack's verdict on a stack's declared inputs."""

    stack: str
    findings: tuple[Finding, ...]
    blocking: tuple[Finding, ...]
    refusal: str | None = None

    @property
    def passed(self) -> bool:
        return self.refusal is None and not self.blocking

    def violations(self) -> list[str]:
        return [f"{f.policy} ({f.resource_name}): {f.message}" for f in self.blocking]


def check_policies(stack: str) -> PolicyCheck:
    """Run the policy pack over what the program declares for ``stack``.

    Fails closed: a pack that answers no finding at all checked nothing, and refuses;
    an error in the pack or the program propagates (nothing is deployed).
    """
    from infra.mockrun import run_program
    from infra.policies.pack import blocking_findings, evaluate_stack

    run = run_program(stack)
    findings = tuple(evaluate_stack(run.resources, read_stage_file(stack)))
    blocking = tuple(blocking_findings(findings))
    refusal = None if findings else f"the policy pack returned no findings for {stack}"
    return PolicyCheck(stack, findings, blocking, refusal)


# -------------------------------------------------------------------------- promote

PromotionResult = Literal["promoted", "refused", "policy-violation", "verification-failed"]


@dataclass(frozen=True)
class Promotion:
    """What one ``promote`` did, as recorded in ``rollout.json``."""

    to: str
    release: str
    target: str
    result: PromotionResult
    reason: str | None = None
    policy: PolicyCheck | None = None
    record: DeploymentRecord | None = None
    verification: Verification | None = None
    recorded: dict[str, Any] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        return self.result == "promoted"

    def to_json(self) -> dict[str, Any]:
        return {
            **self.recorded,
            "policy_findings": len(self.policy.findings) if self.policy else None,
            "verification": self.verification.to_json() if self.verification else None,
        }


def promote(
    to: str,
    deployer: Deployer,
    *,
    state_dir: Path,
    release: str | None = None,
    progress: Progress | None = None,
    policies: Callable[[str], PolicyCheck] = check_policies,
    verify: Callable[..., Verification] = verify_deployment,
    reachable: Reachable = endpoint_reachable,
) -> Promotion:
    """Gate, policy-check, deploy and verify ``release`` (default: this checkout's) on
    the stack ``to``; every outcome is appended to ``rollout.json``.

    Args:
        deployer: where to deploy (:class:`EmulatorDeployer`, :class:`PulumiDeployer`).
        progress: called with the deploy's progress lines.
        policies, verify, reachable: the policy check, the post-deploy verification and
            the emulator probe (replaceable in tests).

    Raises:
        StageConfigError: the stage of ``to`` is invalid (nothing deployed).
        DeployFailed: the deploy did not complete (recorded as such, then raised).
    """
    release = release or current_release()
    base = {"to": to, "release": release, "target": deployer.target}

    def done(result: PromotionResult, **details: Any) -> Promotion:
        entry = {**base, "result": result, **_json_details(details)}
        record_promotion(state_dir, entry)
        return Promotion(to, release, deployer.target, result, recorded=entry, **details)

    refusal = promotion_refusal(to, state_dir, release, reachable=reachable)
    if refusal:
        return done("refused", reason=refusal)
    policy = policies(to)
    if not policy.passed:
        return done("policy-violation", reason=policy.refusal, policy=policy)
    try:
        record = deployer.deploy(to, state_dir=state_dir, progress=progress)
    except DeployFailed as error:
        record_promotion(state_dir, {**base, "result": "deploy-failed", "reason": str(error)})
        raise
    verification = verify_deployment(
        record, endpoint_url=deployer.endpoint_url, state_dir=state_dir
    )
    return done(
        "promoted" if verification.passed else "verification-failed",
        policy=policy,
        record=record,
        verification=verification,
    )


def _json_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """What ``rollout.json`` keeps of a promotion's details (plain values only)."""
    out: dict[str, Any] = {}
    if details.get("reason"):
        out["reason"] = details["reason"]
    policy: PolicyCheck | None = details.get("policy")
    if policy is not None and policy.blocking:
        out["violations"] = [f"{f.policy} ({f.resource_name})" for f in policy.blocking]
    verification: Verification | None = details.get("verification")
    if verification is not None:
        out["failed_checks"] = list(verification.failed_checks)
        out["reports"] = list(verification.report_paths)
    return out
