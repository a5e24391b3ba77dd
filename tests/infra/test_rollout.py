"""Promotion as library code (``infra.rollout``): the gate, the policy pack failing closed,
phases of a stopped emulator reported as not running, the flow through a deployer, and
the Pulumi Automation API deployer recording the resources of the engine's state."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pulumi.automation.errors import CommandError

from infra.config_source import STAGES_DIR
from infra.emulator import DeploymentRecord, load_record
from infra.emulator.record import SECRET_PLACEHOLDER, SECRET_SIG, SECRET_SIG_KEY, current_release
from infra.emulator.server import free_port
from infra.mockrun import ProgramRun, run_program
from infra.rollout import (
    DeployFailed,
    PolicyCheck,
    PulumiDeployer,
    PulumiUnavailable,
    check_policies,
    load_state,
    phase_status,
    promote,
    promotion_refusal,
    record_from_pulumi_state,
    record_verification,
    rollout_status,
    verify_deployment,
)
from infra.stage import STACK_PHASES

PHASE1, PHASE2, PHASE3 = STACK_PHASES


def copy_record(record: DeploymentRecord, state_dir: Path, **changes: Any) -> DeploymentRecord:
    copied = DeploymentRecord.from_json(copy.deepcopy(record.to_json()))
    for key, value in changes.items():
        setattr(copied, key, value)
    copied.save(state_dir)
    return copied


def with_capacity(core: DeploymentRecord, state_dir: Path, *capacity: float) -> None:
    """The core's record as if deployed with (reserved concurrency, rate, burst, ledger
    trails)."""
    concurrency, rate, burst, trails = capacity
    function = core.resource("service-api-function").inputs
    function["reservedConcurrentExecutions"] = concurrency
    function["environment"]["variables"]["HUB_LEDGER_TRAILS"] = str(trails)
    settings = core.resource("service-throttling").inputs["settings"]
    settings.update(throttlingRateLimit=rate, throttlingBurstLimit=burst)
    core.save(state_dir)


TERRITORY_WIDE = (400, 1000, 2000, 8)  # phase 3's floor: the core raised for every phase


@dataclass
class FakeDeployer:
    """Returns a prepared record as if it had deployed it; remembers every call."""

    result: DeploymentRecord | None = None
    endpoint_url: str | None = None
    target: str = "emulator"
    calls: list[str] = field(default_factory=list)

    def deploy(
        self, stack: str, *, state_dir: Path, progress: Callable[[str], None] | None = None
    ) -> DeploymentRecord:
        self.calls.append(stack)
        assert self.result is not None, "the deployer must not be called"
        self.result.save(state_dir)
        return self.result


@pytest.fixture(scope="module")
def phase1_run() -> ProgramRun:
    return run_program(PHASE1)


@pytest.fixture(scope="module")
def phase1_policy(phase1_run: ProgramRun) -> PolicyCheck:
    """The real pack's verdict on the program as declared (the program runs once)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("infra.mockrun.run_program", lambda stack: phase1_run)
        return check_policies(PHASE1)


# --------------------------------------------------------------------------- the gate


def test_promote_to_phase_2_is_refused_before_phase_1_is_deployed(tmp_path: Path) -> None:
    deployer = FakeDeployer()
    promotion = promote(PHASE2, deployer, state_dir=tmp_path, policies=_never)
    assert promotion.result == "refused" and PHASE1 in str(promotion.reason)
    assert deployer.calls == [] and load_record(PHASE2, tmp_path) is None
    assert load_state(tmp_path)["promotions"][-1]["result"] == "refused"


def test_promote_to_phase_2_is_refused_until_phase_1_is_verified(
    deployed_stacks: dict[str, DeploymentRecord], tmp_path: Path
) -> None:
    release = current_release()
    phase1 = copy_record(deployed_stacks[PHASE1], tmp_path, release=release)

    refusal = promotion_refusal(PHASE2, tmp_path, release)
    assert refusal is not None and "not verified" in refusal

    record_verification(
        tmp_path, phase1, passed=False, failed_checks=["keys.rotation_enabled"], report_paths=[]
    )
    refusal = promotion_refusal(PHASE2, tmp_path, release)
    assert refusal is not None and "keys.rotation_enabled" in refusal

    record_verification(tmp_path, phase1, passed=True, failed_checks=[], report_paths=[])
    with_capacity(phase1, tmp_path, *TERRITORY_WIDE)
    assert promotion_refusal(PHASE2, tmp_path, release) is None
    assert phase_status(PHASE1, tmp_path).verified

    # another release, or a redeploy after the verification, needs a new verification
    assert "runs release" in str(promotion_refusal(PHASE2, tmp_path, release + "-other"))
    copy_record(phase1, tmp_path, deployed_at="2099-01-01T00:00:00+00:00")
    assert not phase_status(PHASE1, tmp_path).verified
    assert "not verified" in str(promotion_refusal(PHASE2, tmp_path, release))


# ------------------------------------------------------------------- not running


def _write_local_json(state_dir: Path, endpoint: str, status: str) -> None:
    (state_dir / "local.json").write_text(
        json.dumps(
            {"status": status, "emulatorEndpoint": endpoint, "stoppedAt": "2026-01-02T03:04:05"}
        )
    )


def test_the_stacks_of_a_stopped_local_platform_are_not_running(
    deployed_stacks: dict[str, DeploymentRecord], tmp_path: Path
) -> None:
    release = current_release()
    phase1 = copy_record(deployed_stacks[PHASE1], tmp_path, release=release)
    record_verification(tmp_path, phase1, passed=True, failed_checks=[], report_paths=[])
    assert phase1.endpoint_url
    _write_local_json(tmp_path, phase1.endpoint_url, "running")
    assert phase_status(PHASE1, tmp_path).deployed

    _write_local_json(tmp_path, phase1.endpoint_url, "stopped")
    status = phase_status(PHASE1, tmp_path)
    assert status.state == "not running" and not status.deployed and not status.verified
    assert "stopped at 2026-01-02T03:04:05" in status.note
    refusal = promotion_refusal(PHASE2, tmp_path, release)
    assert refusal is not None and "not running" in refusal


def test_a_stack_whose_emulator_is_gone_is_not_running(
    deployed_stacks: dict[str, DeploymentRecord], tmp_path: Path
) -> None:
    gone = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    copy_record(deployed_stacks[PHASE1], tmp_path, endpoint_url=gone)
    copy_record(deployed_stacks[PHASE2], tmp_path)  # its emulator (the session's) still runs
    copy_record(deployed_stacks[PHASE3], tmp_path, target="pulumi", endpoint_url=None)
    statuses = {s.stack: s for s in rollout_status(tmp_path)}
    assert statuses[PHASE1].state == "not running" and gone in statuses[PHASE1].note
    assert statuses[PHASE2].state == "deployed"
    assert statuses[PHASE3].state == "deployed"  # a real-AWS deploy is not probed
    # the probe decides: the same record with its endpoint answering is deployed
    assert phase_status(PHASE1, tmp_path, reachable=lambda url: True).deployed


def test_each_endpoint_is_probed_once(
    deployed_stacks: dict[str, DeploymentRecord], tmp_path: Path
) -> None:
    for stack in STACK_PHASES:
        copy_record(deployed_stacks[stack], tmp_path)
    probed: list[str] = []
    rollout_status(tmp_path, reachable=lambda url: probed.append(url) is None)
    assert len(probed) == 1


# ------------------------------------------------------------------- the policy gate


def _never(stack: str) -> PolicyCheck:
    raise AssertionError("the policy pack must not run")


def _without_key_rotation(run: ProgramRun) -> ProgramRun:
    broken = copy.deepcopy(run)
    key = next(r for r in broken.resources if r.type == "aws:kms/key:Key" and r.inputs)
    key.inputs["enableKeyRotation"] = False
    return broken


def test_a_blocking_violation_stops_the_promotion_before_the_deploy(
    phase1_run: ProgramRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "infra.mockrun.run_program", lambda stack: _without_key_rotation(phase1_run)
    )
    deployer = FakeDeployer()
    promotion = promote(PHASE1, deployer, state_dir=tmp_path)
    assert promotion.result == "policy-violation" and deployer.calls == []
    assert promotion.policy is not None and promotion.policy.blocking
    assert any("rotation" in v for v in promotion.policy.violations())
    assert load_state(tmp_path)["promotions"][-1]["violations"]


def test_a_pack_that_finds_nothing_refuses(
    phase1_run: ProgramRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("infra.mockrun.run_program", lambda stack: phase1_run)
    monkeypatch.setattr("infra.policies.pack.evaluate_stack", lambda resources, config: [])
    check = check_policies(PHASE1)
    assert not check.passed and "no findings" in str(check.refusal)
    deployer = FakeDeployer()
    promotion = promote(PHASE1, deployer, state_dir=tmp_path)
    assert promotion.result == "policy-violation" and deployer.calls == []


def test_a_pack_that_fails_stops_the_promotion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(resources: Any, config: Any) -> Any:
        raise RuntimeError("rule crashed")

    monkeypatch.setattr("infra.mockrun.run_program", lambda stack: SimpleNamespace(resources=[]))
    monkeypatch.setattr("infra.policies.pack.evaluate_stack", broken)
    deployer = FakeDeployer()
    with pytest.raises(RuntimeError, match="rule crashed"):
        promote(PHASE1, deployer, state_dir=tmp_path)
    assert deployer.calls == [] and load_record(PHASE1, tmp_path) is None


def test_the_program_as_declared_passes_the_gate(phase1_policy: PolicyCheck) -> None:
    assert phase1_policy.passed and phase1_policy.findings and not phase1_policy.blocking


# ------------------------------------------------------------------------- the flow


def test_promote_deploys_verifies_and_records(
    deployed_stacks: dict[str, DeploymentRecord],
    phase1_policy: PolicyCheck,
    moto_endpoint: str,
    tmp_path: Path,
) -> None:
    # the session's hub has its layers standing on the core: the state dir says so too
    for layer in (PHASE2, PHASE3):
        copy_record(deployed_stacks[layer], tmp_path)
    deployer = FakeDeployer(copy_record(deployed_stacks[PHASE1], tmp_path), moto_endpoint)
    promotion = promote(PHASE1, deployer, state_dir=tmp_path, policies=lambda s: phase1_policy)
    assert promotion.promoted, promotion.to_json()
    assert deployer.calls == [PHASE1]
    assert promotion.verification is not None and promotion.verification.report_paths
    assert phase_status(PHASE1, tmp_path).verified
    entry = load_state(tmp_path)["promotions"][-1]
    assert entry["result"] == "promoted" and entry["failed_checks"] == []
    assert json.dumps(promotion.to_json())


def test_a_phase_that_fails_verification_is_not_promoted(
    deployed_stacks: dict[str, DeploymentRecord],
    phase1_policy: PolicyCheck,
    moto_endpoint: str,
    tmp_path: Path,
) -> None:
    record = copy_record(deployed_stacks[PHASE1], tmp_path)
    record.outputs["userPoolId"] = "ap-east-1_doesnotexist"  # the pool's checks must fail
    deployer = FakeDeployer(record, moto_endpoint)
    promotion = promote(PHASE1, deployer, state_dir=tmp_path, policies=lambda s: phase1_policy)
    assert promotion.result == "verification-failed"
    assert promotion.verification is not None and promotion.verification.failed_checks
    assert not phase_status(PHASE1, tmp_path).verified
    assert load_state(tmp_path)["promotions"][-1]["result"] == "verification-failed"


def test_a_layer_is_verified_with_the_core_it_references(
    deployed_stacks: dict[str, DeploymentRecord], moto_endpoint: str, tmp_path: Path
) -> None:
    """Verifying phase 3's layer checks its own web ACL and, through the outputs it
    re-exports, the core's keys, pool and API; without the core there is nothing to
    check it with."""
    from infra.emulator.hub import verification_target
    from infra.mockrun import StackNotDeployed

    layer = copy_record(deployed_stacks[PHASE3], tmp_path)
    with pytest.raises(StackNotDeployed):
        verify_deployment(layer, endpoint_url=moto_endpoint, state_dir=tmp_path)
    core = copy_record(deployed_stacks[PHASE1], tmp_path)
    copy_record(deployed_stacks[PHASE2], tmp_path)
    verification = verify_deployment(layer, endpoint_url=moto_endpoint, state_dir=tmp_path)
    assert verification.passed, verification.failed_checks
    statuses = {(c.id, c.resource): c.status for c in verification.report.checks}
    assert statuses[("api.waf_attached", f"{core.outputs['apiId']} stage v1")] == "pass"
    records_key = f"records key {core.outputs['recordsKeyArn']}"
    assert statuses[("keys.rotation_enabled", records_key)] == "pass"
    view, stage = verification_target(layer, tmp_path)
    assert {r.name for r in view.resources} >= {"service-waf", "keys-records", "service-api"}
    assert stage.capacity == verification_target(core, tmp_path)[1].capacity  # the core's
    # and the core, verified with its layers standing, still passes
    assert verify_deployment(core, endpoint_url=moto_endpoint, state_dir=tmp_path).passed


def test_promoting_a_layer_needs_the_phase_below_at_the_same_release(
    deployed_stacks: dict[str, DeploymentRecord], tmp_path: Path
) -> None:
    """Phase 3 stands on phase 2, which stands on the core: each gate looks one below."""
    release = current_release()
    core = copy_record(deployed_stacks[PHASE1], tmp_path, release=release)
    with_capacity(core, tmp_path, *TERRITORY_WIDE)
    record_verification(tmp_path, core, passed=True, failed_checks=[], report_paths=[])
    assert promotion_refusal(PHASE2, tmp_path, release) is None
    refusal = promotion_refusal(PHASE3, tmp_path, release)
    assert refusal is not None and f"{PHASE2} (phase 2) is not deployed" in refusal
    phase2 = copy_record(deployed_stacks[PHASE2], tmp_path, release=release)
    record_verification(tmp_path, phase2, passed=True, failed_checks=[], report_paths=[])
    assert promotion_refusal(PHASE3, tmp_path, release) is None


def test_promotion_refuses_a_core_capacity_below_the_phases_floor(
    deployed_stacks: dict[str, DeploymentRecord], tmp_path: Path
) -> None:
    """The layers share the core's function and API stage: promoting phase 2 needs the
    core deployed with at least phase 2's capacity (its stage's hub:capacity)."""
    release = current_release()
    core = copy_record(deployed_stacks[PHASE1], tmp_path, release=release)
    with_capacity(core, tmp_path, 20, 50, 100, 1)  # phase 1's own capacity
    record_verification(tmp_path, core, passed=True, failed_checks=[], report_paths=[])
    refusal = promotion_refusal(PHASE2, tmp_path, release)
    assert refusal is not None
    assert "ledger trails 20/50/100/1) is below phase2-hospital-authority's floor" in refusal
    assert "floor (100/200/400/4)" in refusal
    assert "stages/Pulumi.phase1-specialist.yaml" in refusal
    with_capacity(core, tmp_path, 100, 200, 399, 4)  # one short on the burst
    assert "floor" in str(promotion_refusal(PHASE2, tmp_path, release))
    # The ledger's trails are capacity too: the core's one ledger serves every phase.
    with_capacity(core, tmp_path, 100, 200, 400, 3)
    assert "floor (100/200/400/4)" in str(promotion_refusal(PHASE2, tmp_path, release))
    with_capacity(core, tmp_path, 100, 200, 400, 4)
    record_verification(tmp_path, core, passed=True, failed_checks=[], report_paths=[])
    assert promotion_refusal(PHASE2, tmp_path, release) is None
    deployer = FakeDeployer()
    with_capacity(core, tmp_path, 20, 50, 100, 1)
    record_verification(tmp_path, core, passed=True, failed_checks=[], report_paths=[])
    promotion = promote(PHASE2, deployer, state_dir=tmp_path, release=release, policies=_never)
    assert promotion.result == "refused" and deployer.calls == []


# ------------------------------------------------------------------ the Pulumi deployer

STACK_URN = f"urn:pulumi:{PHASE1}::hub::pulumi:pulumi:Stack::hub-{PHASE1}"
OIDC_SECRET = "synthetic-oidc-client-secret"


def pulumi_export(run: ProgramRun) -> dict[str, Any]:
    """A ``pulumi stack export --show-secrets`` (format v3) of what ``run`` declared, as
    the engine would hold it after ``pulumi up``: the stack, the provider, components
    under the stack, each custom resource with its inputs, outputs and parent."""
    provider = f"urn:pulumi:{PHASE1}::hub::pulumi:providers:aws::default_7_51_1"
    resources: list[dict[str, Any]] = [
        {"urn": STACK_URN, "custom": False, "type": "pulumi:pulumi:Stack"},
        {"urn": provider, "custom": True, "id": "prov-1", "type": "pulumi:providers:aws"},
    ]
    for r in run.resources:
        resources.append(
            {
                "urn": r.urn,
                "custom": r.custom,
                "id": r.id if r.custom else "",
                "type": r.type,
                "parent": r.parent_urn or STACK_URN,
                "protect": r.protect,
                "inputs": {**r.inputs, "__defaults": ["name"]},
                "outputs": r.state,
                "provider": f"{provider}::prov-1" if r.custom else "",
            }
        )
    # the CLI's export is JSON: archives and assets arrive as plain values
    return dict(
        json.loads(
            json.dumps({"manifest": {"version": "3.200.0"}, "resources": resources}, default=str)
        )
    )


@dataclass
class FakeWorkspaceStack:
    """What ``pulumi.automation.Stack`` answers, without the Pulumi CLI."""

    exported: dict[str, Any]
    outputs: dict[str, Any]
    fail: Exception | None = None
    ran: list[str] = field(default_factory=list)

    def up(self, *, on_output: Callable[[str], Any] | None = None) -> Any:
        self.ran.append("up")
        if self.fail:
            raise self.fail
        if on_output:
            on_output("Updating (phase1-specialist)\n")
        return SimpleNamespace(
            outputs={
                k: SimpleNamespace(value=v, secret=k == "oidcSecret")
                for k, v in self.outputs.items()
            }
        )

    def export_stack(self) -> Any:
        self.ran.append("export")
        return SimpleNamespace(version=3, deployment=self.exported)


def _deployer(workspace: FakeWorkspaceStack) -> PulumiDeployer:
    return PulumiDeployer(
        select=lambda stack, work_dir: workspace, which=lambda name: "/bin/pulumi"
    )


def _workspace(run: ProgramRun) -> FakeWorkspaceStack:
    exported = pulumi_export(run)
    function = next(r for r in exported["resources"] if r["type"] == "aws:lambda/function:Function")
    # how the CLI exports a secret input with --show-secrets, and a known secret value
    function["inputs"]["environment"] = {
        SECRET_SIG_KEY: SECRET_SIG,
        "plaintext": '{"variables": {"X": "y"}}',
    }
    function["outputs"]["description"] = f"uses {OIDC_SECRET}"
    exported["resources"].append({**function, "urn": function["urn"] + "-old", "delete": True})
    return FakeWorkspaceStack(exported, {**run.outputs, "oidcSecret": OIDC_SECRET})


def _stages_with_oidc_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The phase-1 stage file plus a decrypted OIDC client secret, as a stage file holds
    it where the operator keeps secrets in plain text (the value must never be recorded)."""
    stages = tmp_path / "stages"
    stages.mkdir()
    original = (STAGES_DIR / f"Pulumi.{PHASE1}.yaml").read_text()
    secret = f'  hub:oidcClientSecrets: {{"synthetic-idp": "{OIDC_SECRET}"}}\n'
    (stages / f"Pulumi.{PHASE1}.yaml").write_text(original.rstrip("\n") + "\n" + secret)
    monkeypatch.setattr("infra.config_source.STAGES_DIR", stages)


def test_the_pulumi_deployer_records_every_resource_of_the_state(
    phase1_run: ProgramRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stages_with_oidc_secret(tmp_path, monkeypatch)
    workspace = _workspace(phase1_run)
    lines: list[str] = []
    record = _deployer(workspace).deploy(PHASE1, state_dir=tmp_path, progress=lines.append)
    assert workspace.ran == ["up", "export"] and lines

    declared = {(r.type, r.name): r for r in phase1_run.resources if r.custom}
    recorded = {(r.type, r.name): r for r in record.resources}
    assert recorded.keys() == declared.keys()  # no stack, provider, component or pending delete
    for key, resource in recorded.items():
        assert resource.id == declared[key].id
        assert resource.component == declared[key].component
        assert resource.protect == declared[key].protect
        assert "__defaults" not in resource.inputs
    assert record.target == "pulumi" and record.gaps == [] and record.phase == 1
    assert record.account_id == "111122223333"  # from the ARNs of the state
    # secrets are redacted wherever they appear, and in the saved record too
    function = next(r for r in record.resources if r.type == "aws:lambda/function:Function")
    assert function.inputs["environment"] == SECRET_PLACEHOLDER
    assert function.state["description"] == SECRET_PLACEHOLDER
    assert record.outputs["oidcSecret"] == SECRET_PLACEHOLDER
    saved = DeploymentRecord.path_for(PHASE1, tmp_path).read_text()
    assert OIDC_SECRET not in saved and '"X": "y"' not in saved
    assert load_record(PHASE1, tmp_path) == record


def test_verification_reads_as_much_after_pulumi_as_after_the_emulator(
    phase1_run: ProgramRun, tmp_path: Path
) -> None:
    from infra.verify import expectations_for

    record = record_from_pulumi_state(
        PHASE1,
        phase1_run.stage,
        outputs={k: SimpleNamespace(value=v, secret=False) for k, v in phase1_run.outputs.items()},
        deployment=pulumi_export(phase1_run),
    )
    emulated = DeploymentRecord.from_json(
        {**record.to_json(), "target": "emulator", "endpoint_url": "http://127.0.0.1:1"}
    )
    without_resources = DeploymentRecord.from_json({**record.to_json(), "resources": []})
    from_pulumi = expectations_for(record)
    assert from_pulumi == expectations_for(emulated)
    # what a record without resources (the Pulumi deployer before) left unchecked
    before = expectations_for(without_resources)
    assert set(from_pulumi.log_groups) > set(before.log_groups)
    function_names = {r.id for r in record.of_type("aws:lambda/function:Function")}
    assert function_names <= set(from_pulumi.functions)


def test_without_the_pulumi_cli_nothing_is_attempted(tmp_path: Path) -> None:
    workspace = FakeWorkspaceStack({}, {})
    deployer = PulumiDeployer(select=lambda s, w: workspace, which=lambda name: None)
    with pytest.raises(PulumiUnavailable, match="Pulumi CLI is not installed"):
        deployer.deploy(PHASE1, state_dir=tmp_path)
    assert workspace.ran == [] and load_record(PHASE1, tmp_path) is None


def test_a_failed_pulumi_up_is_recorded_and_raised(
    phase1_policy: PolicyCheck, tmp_path: Path
) -> None:
    workspace = FakeWorkspaceStack({}, {}, fail=CommandError("update failed: AccessDenied"))
    with pytest.raises(DeployFailed, match="AccessDenied"):
        promote(PHASE1, _deployer(workspace), state_dir=tmp_path, policies=lambda s: phase1_policy)
    assert load_record(PHASE1, tmp_path) is None
    entry = load_state(tmp_path)["promotions"][-1]
    assert entry["result"] == "deploy-failed" and entry["target"] == "pulumi"


def test_the_stage_is_checked_before_pulumi_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra.stage import StageConfigError

    stages = tmp_path / "stages"
    stages.mkdir()
    (stages / f"Pulumi.{PHASE1}.yaml").write_text("config:\n  aws:region: us-east-1\n")
    monkeypatch.setattr("infra.config_source.STAGES_DIR", stages)
    workspace = FakeWorkspaceStack({}, {})
    with pytest.raises(StageConfigError, match="ap-east-1"):
        _deployer(workspace).deploy(PHASE1, state_dir=tmp_path)
    assert workspace.ran == []
