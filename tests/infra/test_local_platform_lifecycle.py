"""The local platform as library code (``infra.local_platform``): one phase brought up on
its own moto, verified, seeded and served; a demo doctor signs in through it; after
``stop()`` its stack is reported as not running; a failed step leaves nothing running.

The deploy itself is the emulator's (tested in tests/infra/emulator/); here the deployer
replays the session's deployment onto the platform's endpoint (every moto server in this
process shares one state), so the test pays for verification, seeding and the API only."""

from __future__ import annotations

import copy
import json
import os
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.emulator import DeploymentRecord
from infra.emulator.server import check_port_free, endpoint_reachable, free_port
from infra.local_platform import (
    MESSAGING_OFF,
    StartupObserver,
    api_environment,
    demo_bearer,
    start_api,
    start_local_platform,
)
from infra.rollout import EmulatorDeployer, phase_status
from infra.stage import StageConfigError

PHASE1 = "phase1-specialist"
PHASE2 = "phase2-hospital-authority"
PHASE3 = "phase3-private-practice"
HANDLER_MODULE = "app.lambda_handler"


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """The platform puts its function's declared environment (``HUB_*``, the emulator's
    endpoint) into its process, as ``hub local up``'s own process needs; here that process
    is the test worker, so each test gives the environment back as it found it (a later
    test reading ``Settings()`` from the environment must not see a deployment's)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@dataclass
class ReplayDeployer:
    """Hands back the session's deployment as deployed onto ``endpoint_url``."""

    deployed: dict[str, DeploymentRecord]
    endpoint_url: str
    target: str = "emulator"

    def deploy(
        self, stack: str, *, state_dir: Path, progress: Callable[[str], None] | None = None
    ) -> DeploymentRecord:
        if progress:
            progress("created aws:kms/key:Key keys-records")
        record = DeploymentRecord.from_json(
            {**copy.deepcopy(self.deployed[stack].to_json()), "endpoint_url": self.endpoint_url}
        )
        record.save(state_dir)
        return record


class Recorder(StartupObserver):
    def __init__(self) -> None:
        self.events: list[str] = []

    def emulator_started(self, endpoint: str) -> None:
        self.events.append("emulator")

    def deploying(self, stack: str) -> None:
        self.events.append(f"deploying {stack}")

    def deploy_progress(self, stack: str, line: str) -> None:
        if "progress" not in self.events:
            self.events.append("progress")

    def deployed(self, record: Any) -> None:
        self.events.append(f"deployed {record.stack}")

    def all_deployed(self, records: Any) -> None:
        self.events.append("all deployed")

    def verified(self, verification: Any) -> None:
        self.events.append(f"verified {verification.stack} {verification.passed}")


def test_the_hubs_ledger_runs_the_highest_phases_trails() -> None:
    """The phases come up together, without the promotion gate that on AWS makes the core
    meet a layer's floor first: the hub's ledger runs the core's trails or the highest
    phase's floor, whichever is more, and the API's function gets it as
    HUB_LEDGER_TRAILS over its declared environment (the core's stage's)."""
    from infra.emulator.hub import hub_ledger_trails
    from infra.verify import load_stage

    floor = {s: load_stage(s).capacity.ledger_trails for s in (PHASE1, PHASE2, PHASE3)}
    assert floor == {PHASE1: 1, PHASE2: 4, PHASE3: 8}  # the stage files' (docs/ledger.md)
    assert hub_ledger_trails([PHASE1]) == 1
    assert hub_ledger_trails([PHASE1, PHASE2]) == 4
    assert hub_ledger_trails([PHASE1, PHASE2, PHASE3]) == 8
    assert hub_ledger_trails([PHASE3]) == 8  # one phase alone: a hub of its own
    environment = api_environment({"ledgerTrails": 8})
    assert environment["HUB_LEDGER_TRAILS"] == "8"
    assert MESSAGING_OFF.items() <= environment.items()
    messaging = {"HUB_MODE": "local", "HUB_MATRIX_HOMESERVER_URL": "http://127.0.0.1:1"}
    assert api_environment({"ledgerTrails": 4}, messaging) == {
        **messaging,
        "HUB_LEDGER_TRAILS": "4",
    }
    assert "HUB_LEDGER_TRAILS" not in api_environment({})  # an older local.json: declared


def test_one_phase_comes_up_serves_a_doctor_and_stops(
    deployed_stacks: dict[str, DeploymentRecord],
    moto_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the platform sets fake credentials and the API sets AWS_ENDPOINT_URL: restore both
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    # The session's moto holds the layers over this core (their providers on its pool):
    # the state directory says so, as it would on the machine that deployed them.
    for layer in (PHASE2, PHASE3):
        ReplayDeployer(deployed_stacks, moto_endpoint).deploy(layer, state_dir=tmp_path)
    recorder = Recorder()
    platform = start_local_platform(
        port=0,
        state_dir=tmp_path,
        api_port=free_port(),
        api_stack=PHASE1,
        stacks=(PHASE1,),
        observer=recorder,
        deployer_for=lambda endpoint: ReplayDeployer(deployed_stacks, endpoint),
    )
    try:
        assert recorder.events == [
            "emulator",
            f"deploying {PHASE1}",
            "progress",
            f"deployed {PHASE1}",
            "all deployed",
            f"verified {PHASE1} True",
        ]
        document = json.loads(platform.local_json.read_text())
        assert stat.S_IMODE(platform.local_json.stat().st_mode) == 0o600  # demo passwords
        assert document["status"] == "running" and document["synthetic"] is True
        assert document["emulatorEndpoint"] == platform.endpoint != moto_endpoint
        assert document["apiBaseUrl"] == platform.api_url and document["apiStack"] == PHASE1
        assert document["verification"][PHASE1]["passed"] is True
        assert phase_status(PHASE1, tmp_path).deployed and phase_status(PHASE1, tmp_path).verified

        assert platform.api_url is not None
        assert httpx.get(f"{platform.api_url}/health").status_code == 200
        doctor = next(u for u in document["demoUsers"] if u["role"] == "doctor")
        me = httpx.get(f"{platform.api_url}/me", headers=demo_bearer(document, PHASE1)(doctor))
        assert me.status_code == 200 and me.json()["reg_no"] == doctor["mchk_reg_no"]

        summary = platform.summary()
        assert summary["stacks"][PHASE1]["verified"] is True
        assert "password" not in json.dumps(summary)
    finally:
        platform.stop()
    platform.stop()  # idempotent
    assert json.loads(platform.local_json.read_text())["status"] == "stopped"
    assert not endpoint_reachable(platform.endpoint)
    status = phase_status(PHASE1, tmp_path)
    assert status.state == "not running" and not status.verified


def test_the_hub_comes_up_as_one_and_two_phases_share_a_record(
    deployed_stacks: dict[str, DeploymentRecord],
    moto_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``hub local up`` with every phase: one pool, one set of keys, one API, all in the
    core's record; the layers verified with the core; a phase 1 specialist and a phase 2
    HA doctor in one group sharing one record (scripts/demo_one_hub.py)."""
    import importlib.util

    from app.local import local_app
    from app.main import lambda_handler_for
    from infra.emulator.gateway import DeclaredApi, LocalGateway
    from infra.emulator.hub import top_of_hub

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    platform = start_local_platform(
        port=0,
        state_dir=tmp_path,
        api=False,
        deployer_for=lambda endpoint: ReplayDeployer(deployed_stacks, endpoint),
    )
    gateway = None
    try:
        document = json.loads(platform.local_json.read_text())
        for stack in (PHASE1, PHASE2, PHASE3):
            assert document["verification"][stack]["passed"] is True, stack
            assert phase_status(stack, tmp_path).verified, stack
        records = {r.stack: r for r in platform.records}
        for type_token, count in (
            ("aws:cognito/userPool:UserPool", 1),
            # records, audit, ledger signing, backup vault, messaging
            ("aws:kms/key:Key", 5),
            ("aws:apigateway/restApi:RestApi", 1),
            # the hub's one homeserver and its database
            ("aws:ecs/service:Service", 1),
            ("aws:rds/instance:Instance", 1),
        ):
            holders = {
                s: len(r.of_type(type_token)) for s, r in records.items() if r.of_type(type_token)
            }
            assert holders == {PHASE1: count}, type_token
        pools = {s["outputs"]["userPoolId"] for s in document["stacks"].values()}
        apis = {s["outputs"]["apiUrl"] for s in document["stacks"].values()}
        homeservers = {s["outputs"]["homeserverUrl"] for s in document["stacks"].values()}
        assert len(pools) == 1 and len(apis) == 1 and len(homeservers) == 1
        # Messaging came up once, for the hub: started for the API's stack (a layer), it
        # found the core's topics and queue through the outputs the layer re-exports.
        assert document["messaging"]["homeserverUrl"] == platform.messaging["homeserverUrl"]
        environment = platform._messaging.environment
        core = records[PHASE1].outputs
        assert environment["HUB_NOTIFICATION_TOPIC_ARN"] == core["notificationTopicArn"]
        assert environment["HUB_SECURITY_TOPIC_ARN"] == core["securityTopicArn"]
        assert environment["HUB_OUTBOX_DEAD_LETTER_QUEUE_URL"] == core["outboxDeadLetterQueueUrl"]
        # each phase seeded the institutions it adds, into the one pool
        by_phase = {
            stack: {u["institution"] for u in document["demoUsers"] if u["stack"] == stack}
            for stack in (PHASE1, PHASE2, PHASE3)
        }
        assert by_phase[PHASE2] == {"victoria-general", "new-territories-east-cluster"}
        assert not by_phase[PHASE1] & by_phase[PHASE2]
        usernames = [u["username"] for u in document["demoUsers"]]
        assert len(usernames) == len(set(usernames))

        # The hub's API as the platform serves it: the gateway built from the whole hub's
        # records (the core's API behind its web ACL). The app is built for this
        # platform's emulator here: the deployed handler is imported once per process
        # (as in a Lambda execution environment), bound to the first platform's emulator.
        hub = top_of_hub(tmp_path)
        assert hub is not None and hub.stack == PHASE3
        assert DeclaredApi.from_record(hub).web_acl_rules  # the core's web ACL guards it
        # The hub stands at phase 3: its ledger runs phase 3's trails (the core's file
        # keeps phase 1's 1), with the signed ledger checkpoint over them.
        assert document["ledgerTrails"] == 8
        app = local_app(document, PHASE3)
        assert app.state.services.ledger.trail_count == 8
        gateway = LocalGateway(hub, lambda_handler_for(app))
        api_url = gateway.start(port=free_port())
        script = Path(__file__).resolve().parents[2] / "scripts" / "demo_one_hub.py"
        spec = importlib.util.spec_from_file_location("demo_one_hub", script)
        assert spec and spec.loader
        demo = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(demo)
        lines: list[str] = []
        outcome = demo.run(document, api_url, say=lines.append, state_dir=tmp_path)
        for step in ("group", "invite", "accept", "upload", "share", "consent", "specialist_opens"):
            assert outcome.results[step] == "ok", step
        # the alliance reads the HA hospital's record only once the patient consents to it
        assert outcome.results["before_consent"] == "403"
        assert outcome.facts["specialist_opens_matches"] is True
        assert outcome.facts["me_ha_institution"] in by_phase[PHASE2]
        assert outcome.facts["me_specialist_institution"] in by_phase[PHASE1]

        # Community-care intake through the one hub: the core's API method, clinic systems
        # of phase 2's layer (with its resource server) and of phase 3's (under it), all
        # on the core's pool, each mapped to its institution by its layer's seeding.
        intake_clients = {
            stack: {c["name"] for c in document["stacks"][stack]["outputs"]["intakeClients"]}
            for stack in (PHASE2, PHASE3)
        }
        assert intake_clients == {
            PHASE2: {"cms-victoria-general", "cms-harbour-cardiac"},
            PHASE3: {"cms-peak-family-clinic"},
        }
        assert "intakeClients" not in document["stacks"][PHASE1]["outputs"]
        spec = importlib.util.spec_from_file_location(
            "demo_interop", script.with_name("demo_interop.py")
        )
        assert spec and spec.loader
        interop = importlib.util.module_from_spec(spec)
        # its dataclasses resolve their annotations through sys.modules
        monkeypatch.setitem(sys.modules, "demo_interop", interop)
        spec.loader.exec_module(interop)
        lines = []
        # The session's pool is shared by this module's platforms, whose first doctors
        # other tests enrolled in TOTP with their own authenticator files: the walk
        # signs in each institution's last doctors instead (the walk takes the first).
        reversed_users = {**document, "demoUsers": document["demoUsers"][::-1]}
        submitted = interop.run(
            reversed_users,
            PHASE3,
            api_url,
            say=lines.append,
            authenticators=tmp_path / "demo-authenticators.json",
        )
        # phase 2's system (harbour-cardiac-alliance) and phase 3's (peak-family-clinic)
        assert sorted(submitted.records) == ["harbour-cardiac-alliance", "peak-family-clinic"]
        assert submitted.statuses["doctor_on_intake"] == 401
        assert lines[-1] == "Walk-through complete: every step answered as expected."

        # The walk-throughs' doctors and clinic systems wrote to several trails, and
        # `hub audit verify --live` checks every one and the ledger checkpoints.
        from typer.testing import CliRunner

        from infra.cli import app as hub_cli

        verified = CliRunner().invoke(
            hub_cli,
            ["audit", "verify", "--live", "--json", "--stack", PHASE3],
            env={"HUB_STATE_DIR": str(tmp_path), "AWS_ENDPOINT_URL": platform.endpoint},
        )
        assert verified.exit_code == 0, verified.output
        report = json.loads(verified.stdout)
        assert report["trails"] > 1 and report["ledger_checkpoints_verified"] >= 1, report
    finally:
        if gateway is not None:
            gateway.stop()
        platform.stop()


@pytest.fixture
def own_handler() -> Iterator[None]:
    """serve_stack imports the function's handler once per process (as a Lambda
    execution environment does): a second platform in this process needs its own, and
    leaves none behind for the next."""
    saved = sys.modules.pop(HANDLER_MODULE, None)
    yield
    sys.modules.pop(HANDLER_MODULE, None)
    if saved is not None:
        sys.modules[HANDLER_MODULE] = saved


@pytest.mark.usefixtures("own_handler")
def test_without_messaging_the_api_starts_and_its_messaging_routes_answer_503(
    deployed_stacks: dict[str, DeploymentRecord],
    moto_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`hub local up --no-messaging`: the stack still declares the messaging settings (and
    an application service secret with no value on the emulator); the API starts with
    messaging off instead of failing on that secret, and says so per route."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    for name in MESSAGING_OFF:  # the handler's import writes the process's environment
        monkeypatch.delenv(name, raising=False)
    platform = start_local_platform(
        port=0,
        state_dir=tmp_path,
        api_port=free_port(),
        api_stack=PHASE1,
        stacks=(PHASE1,),
        messaging=False,
        deployer_for=lambda endpoint: ReplayDeployer(deployed_stacks, endpoint),
    )
    try:
        declared = deployed_stacks[PHASE1].outputs
        assert declared["messagingAppserviceSecretArn"]  # the stack does declare messaging
        assert platform.api_url is not None, platform.summary()
        document = json.loads(platform.local_json.read_text())
        assert "messaging" not in document or not document["messaging"]
        assert httpx.get(f"{platform.api_url}/health").status_code == 200
        # another doctor than the test above signs in: moto's users outlive a platform in
        # this process, and that doctor's authenticator secret went with its test
        doctor = [u for u in document["demoUsers"] if u["role"] == "doctor"][-1]
        headers = demo_bearer(document, PHASE1)(doctor)
        r = httpx.post(f"{platform.api_url}/messaging/session", json={}, headers=headers)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "messaging_not_configured"
        assert httpx.get(f"{platform.api_url}/me", headers=headers).status_code == 200
    finally:
        platform.stop()


def test_a_failed_step_stops_the_emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Any, stack: str, **kwargs: Any) -> Any:
        raise StageConfigError("hub:phase", "1", 7)

    monkeypatch.setattr(EmulatorDeployer, "deploy", refuse)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    port = free_port()
    with pytest.raises(StageConfigError, match="hub:phase"):
        start_local_platform(port=port, state_dir=tmp_path, api=False)
    check_port_free("127.0.0.1", port)  # moto let go of its port
    assert not (tmp_path / "local.json").exists()


def test_an_api_that_cannot_start_is_reported_not_hidden(tmp_path: Path) -> None:
    (tmp_path / "local.json").write_text("{}")
    server, url, note = start_api(tmp_path, PHASE1, free_port())
    assert server is None and url is None and "did not start" in note


def test_an_api_port_in_use_is_named(tmp_path: Path) -> None:
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        server, url, note = start_api(tmp_path, PHASE1, port)
    assert server is None and url is None
    assert f"127.0.0.1:{port}" in note and "already in use" in note


def test_the_api_stack_must_be_brought_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not among the stacks"):
        start_local_platform(stacks=(PHASE1,), api_stack="phase3-private-practice")
