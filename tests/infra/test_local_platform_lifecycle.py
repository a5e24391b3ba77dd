"""The local platform as library code (``infra.local_platform``): one phase brought up on
its own moto, verified, seeded and served; a demo doctor signs in through it; after
``stop()`` its stack is reported as not running; a failed step leaves nothing running.

The deploy itself is the emulator's (tested in tests/infra/emulator/); here the deployer
replays the session's deployment onto the platform's endpoint (every moto server in this
process shares one state), so the test pays for verification, seeding and the API only."""

from __future__ import annotations

import copy
import json
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
    demo_bearer,
    start_api,
    start_local_platform,
)
from infra.rollout import EmulatorDeployer, phase_status
from infra.stage import StageConfigError

PHASE1 = "phase1-specialist"
HANDLER_MODULE = "app.lambda_handler"


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
