"""The operator CLI as a new user meets it: ``--version``, help for every option, bad input
as one line with exit 2 (never a traceback), ``--json`` on every command that reports,
full values when piped, and ``rollout status`` telling a stopped platform from a running
one. The flows themselves are tested in test_rollout.py and test_local_platform.py."""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from infra.cli import app
from infra.emulator import DeploymentRecord, DestroyResult, load_record
from infra.emulator.record import current_release, package_version
from infra.emulator.server import free_port
from infra.rollout import load_state, record_verification
from infra.stage import STACK_PHASES

PHASE1, PHASE2, PHASE3 = STACK_PHASES
runner = CliRunner()


def copy_record(record: DeploymentRecord, state_dir: Path, **changes: Any) -> DeploymentRecord:
    copied = DeploymentRecord.from_json(copy.deepcopy(record.to_json()))
    for key, value in changes.items():
        setattr(copied, key, value)
    copied.save(state_dir)
    return copied


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Any:
    return runner.invoke(app, list(args), env=env)


def json_of(result: Any) -> Any:
    return json.loads(result.stdout)


# ------------------------------------------------------------------ version and help


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"hub {package_version()} (release {current_release()})"


def _commands(group: Any, path: str = "hub") -> Iterator[tuple[str, Any]]:
    yield path, group
    for name, command in getattr(group, "commands", {}).items():
        yield from _commands(command, f"{path} {name}")


def test_every_command_option_and_argument_has_help() -> None:
    missing = [
        f"{path} {param.name}"
        for path, command in _commands(typer.main.get_command(app))
        for param in command.params
        if not getattr(param, "help", None)
    ]
    undocumented = [
        path for path, command in _commands(typer.main.get_command(app)) if not command.help
    ]
    assert missing == [] and undocumented == []


# ---------------------------------------------------------------- bad input: exit 2


@pytest.fixture
def empty_state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield int(held.getsockname()[1])


@pytest.fixture
def broken_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    stages = tmp_path / "stages"
    stages.mkdir()
    path = stages / f"Pulumi.{PHASE1}.yaml"
    path.write_text("config:\n  aws:region: ap-east-1\n  hub:phase: 1\n   hub:cohort: [\n")
    monkeypatch.setattr("infra.config_source.STAGES_DIR", stages)
    return path


BAD_INPUT = {
    "no such export": (["audit", "verify", "/no/such/dir"], "/no/such/dir: no such file"),
    "neither export nor live": (["audit", "verify"], "give an export to verify, or --live"),
    "missing public key file": (
        ["audit", "verify", "x", "--public-key", "/no/such.pem"],
        "'/no/such.pem' does not exist",
    ),
    "live without a deployment": (
        ["audit", "verify", "--live", "--state-dir", "{state}"],
        "no deployment: pass --table and --bucket",
    ),
    "unknown stack": (["verify", "--stack", "phase9"], "unknown stack 'phase9'"),
    "unknown stack to preview": (["preview", "-s", "phase9"], "unknown stack 'phase9'"),
    "unknown stack to promote": (["rollout", "promote", "--to", "nope"], "unknown stack 'nope'"),
    "unknown API stack": (["local", "up", "--api-stack", "nope"], "unknown stack 'nope'"),
    "verify without a record": (
        ["verify", "--stack", PHASE1, "--state-dir", "{state}"],
        "has no deployment record",
    ),
    "unknown target": (["deploy", "--stack", PHASE1, "--target", "aws"], "'--target'"),
    "unknown option": (["verify", "--bogus"], "No such option: --bogus"),
    "missing option": (["verify"], "Missing option '--stack'"),
    "not a number": (["local", "up", "--port", "five"], "'--port'"),
    "no endpoint": (
        ["deploy", "--stack", PHASE1, "--target", "emulator", "--state-dir", "{state}"],
        "no AWS endpoint: pass --endpoint",
    ),
    "moto's port taken": (["local", "up", "--port", "{busy}"], "is already in use"),
    "an endpoint that does not answer": (
        [
            "deploy",
            "--stack",
            PHASE1,
            "--target",
            "emulator",
            "--state-dir",
            "{state}",
            "--endpoint",
            "http://127.0.0.1:{free}",
        ],
        "cannot reach AWS: Could not connect to the endpoint URL",
    ),
    "a stage file that is not YAML": (
        ["preview", "-s", PHASE1],
        f"Pulumi.{PHASE1}.yaml line 4, column 14: expected valid YAML",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_one_line_and_exit_2(
    case: str,
    empty_state: Path,
    busy_port: int,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if "YAML" in case:
        request.getfixturevalue("broken_stage")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, os.environ.get(key, "testing"))  # restored after `local up`
    args, expected = BAD_INPUT[case]
    argv = [a.format(state=empty_state, busy=busy_port, free=free_port()) for a in args]
    result = invoke(*argv, env={"AWS_ENDPOINT_URL": None})
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert expected in lines[0]
    assert result.stdout == "" and "Traceback" not in result.output


def test_a_command_group_without_a_command_shows_its_help() -> None:
    result = invoke("rollout")
    assert result.exit_code == 2 and "promote" in result.output and "Error" not in result.output


# ------------------------------------------------------------------ rollout status


def test_rollout_status_shows_each_phase(
    deployed_stacks: dict[str, DeploymentRecord], tmp_path: Path
) -> None:
    phase1 = copy_record(deployed_stacks[PHASE1], tmp_path)
    record_verification(tmp_path, phase1, passed=True, failed_checks=[], report_paths=[])
    result = invoke("rollout", "status", "--state-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[2].strip(): line.split("│")
        for line in result.stdout.splitlines()
        if line.count("│") > 3
    }
    assert rows[PHASE1][3].strip() == "core"
    assert rows[PHASE2][3].strip() == f"layer on {PHASE1}"
    assert rows[PHASE1][4].strip() == f"yes {phase1.deployed_at}"
    assert rows[PHASE1][5].strip() == phase1.release
    assert rows[PHASE1][7].strip().startswith("yes")
    assert rows[PHASE2][4].strip() == "no"
    copy_record(deployed_stacks[PHASE2], tmp_path)
    hub = json_of(invoke("rollout", "status", "--state-dir", str(tmp_path), "--json"))["hub"]
    assert hub == {"core": PHASE1, "deployed": True, "layers": [PHASE2]}


def test_rollout_status_does_not_count_a_stopped_platform_as_deployed(
    deployed_stacks: dict[str, DeploymentRecord], tmp_path: Path
) -> None:
    phase1 = copy_record(deployed_stacks[PHASE1], tmp_path)
    record_verification(tmp_path, phase1, passed=True, failed_checks=[], report_paths=[])
    (tmp_path / "local.json").write_text(
        json.dumps(
            {
                "status": "stopped",
                "stoppedAt": "2026-01-02T03:04:05+00:00",
                "emulatorEndpoint": phase1.endpoint_url,
            }
        )
    )
    result = invoke("rollout", "status", "--state-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    phases = {p["stack"]: p for p in json_of(result)["phases"]}
    assert phases[PHASE1]["state"] == "not running" and phases[PHASE1]["deployed"] is False
    assert phases[PHASE1]["verified"] is False
    shown = invoke("rollout", "status", "--state-dir", str(tmp_path))
    assert "not running" in shown.stdout and "stopped at 2026-01-02T03:04:05" in shown.stdout
    # and there is nothing to verify there
    verify = invoke(
        "verify", "--stack", PHASE1, "--state-dir", str(tmp_path), env={"AWS_ENDPOINT_URL": None}
    )
    assert verify.exit_code == 2 and f"{PHASE1} is not running" in verify.stderr


def test_piped_output_prints_full_values(
    deployed_stacks: dict[str, DeploymentRecord], tmp_path: Path
) -> None:
    """A real process whose stdout is a pipe: no 80-column cut (``phase1-spec…``)."""
    long_release = "0.1.0+0123456789abcdef0123456789abcdef01234567-dirty"
    records = [
        copy_record(deployed_stacks[stack], tmp_path, release=long_release)
        for stack in STACK_PHASES
    ]
    for record in records:
        record_verification(tmp_path, record, passed=True, failed_checks=[], report_paths=[])
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    hub = Path(sys.executable).parent / "hub"
    done = subprocess.run(
        [str(hub), "rollout", "status", "--state-dir", str(tmp_path)],
        capture_output=True,  # stdout is a pipe, as in `hub ... | grep`
        env=env,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    for record in records:
        row = next(line for line in done.stdout.splitlines() if f" {record.stack} " in line)
        assert record.deployed_at in row and long_release in row, done.stdout


# ------------------------------------------------------------------ --json, per command


def test_preview_json() -> None:
    result = invoke("preview", "-s", PHASE1, "--json")
    assert result.exit_code == 0, result.output
    (stack,) = json_of(result)["stacks"]
    assert stack["stack"] == PHASE1 and stack["phase"] == 1
    assert any(r["type"] == "aws:kms/key:Key" and r["protected"] for r in stack["resources"])


def test_verify_json_and_exit_code(
    deployed_stacks: dict[str, DeploymentRecord], tmp_path: Path, moto_endpoint: str
) -> None:
    for stack in STACK_PHASES:  # the hub as the session deployed it: core and layers
        copy_record(deployed_stacks[stack], tmp_path)
    args = ["verify", "--stack", PHASE1, "--state-dir", str(tmp_path), "--endpoint", moto_endpoint]
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    document = json_of(result)
    assert document["passed"] is True and document["report"]["checks"]
    assert all(Path(p).is_file() for p in document["reports"])
    assert load_state(tmp_path)["stacks"][PHASE1]["verified"] is True
    # findings are exit 1
    record = load_record(PHASE1, tmp_path)
    assert record is not None
    record.outputs["userPoolId"] = "ap-east-1_doesnotexist"
    record.save(tmp_path)
    failed = invoke(*args, "--json")
    assert failed.exit_code == 1 and json_of(failed)["passed"] is False


def test_deploy_json(
    deployed_stacks: dict[str, DeploymentRecord],
    tmp_path: Path,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fake_deploy(stack: str, **kwargs: Any) -> DeploymentRecord:
        # the session deployment must stay as it is: check the wiring, not the deploy
        assert kwargs["endpoint_url"] == moto_endpoint
        kwargs["progress"]("created aws:kms/key:Key keys-records")
        return copy_record(deployed_stacks[stack], kwargs["state_dir"])

    monkeypatch.setattr("infra.emulator.deploy", fake_deploy)
    result = invoke(
        "deploy", "--stack", PHASE1, "--target", "emulator", "--endpoint", moto_endpoint,
        "--state-dir", str(tmp_path), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json_of(result)
    assert document["stack"] == PHASE1 and document["target"] == "emulator"
    assert document["resources"] == len(deployed_stacks[PHASE1].resources)
    assert document["gaps"] and Path(document["record"]).is_file()
    assert "Emulator gaps" in result.stderr  # people's output moved to stderr


def test_pulumi_target_without_the_cli_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = invoke("deploy", "--stack", PHASE1, "--target", "pulumi", "--state-dir", str(tmp_path))
    assert result.exit_code == 3
    assert "Pulumi CLI is not installed" in result.stderr
    assert load_record(PHASE1, tmp_path) is None


def test_destroy_lists_what_stayed(
    deployed_stacks: dict[str, DeploymentRecord],
    tmp_path: Path,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record = copy_record(deployed_stacks[PHASE1], tmp_path)
    seen: dict[str, Any] = {}

    def fake_destroy(stack: str, **kwargs: Any) -> DestroyResult:
        # the session deployment must survive: check the wiring, not the deletion
        # (destroy itself is tested in test_emulator_lifecycle.py)
        seen.update(stack=stack, **kwargs)
        return DestroyResult(
            stack=stack,
            deleted=["a", "b"],
            kept=[("keys-records", "protected (protect=True); use --force")],
        )

    monkeypatch.setattr("infra.emulator.destroy", fake_destroy)
    args = ["destroy", "--stack", PHASE1, "--state-dir", str(tmp_path), "--endpoint", moto_endpoint]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "kept keys-records: protected" in result.stdout
    assert seen == {
        "stack": PHASE1,
        "endpoint_url": moto_endpoint,
        "state_dir": tmp_path,
        "force": False,
    }
    assert load_record(PHASE1, tmp_path) == record
    document = json_of(invoke(*args, "--json"))
    assert document["deleted"] == ["a", "b"]
    assert document["kept"] == [
        {"name": "keys-records", "reason": "protected (protect=True); use --force"}
    ]


def test_destroy_refuses_the_core_while_a_layer_stands(
    deployed_stacks: dict[str, DeploymentRecord],
    tmp_path: Path,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    copy_record(deployed_stacks[PHASE1], tmp_path)
    copy_record(deployed_stacks[PHASE2], tmp_path)

    def no_deletion(*args: Any, **kwargs: Any) -> Any:
        pytest.fail("the core was being destroyed under its layer")

    monkeypatch.setattr("infra.emulator.engine.provisioner_for", no_deletion)
    result = invoke(
        "destroy", "--stack", PHASE1, "--state-dir", str(tmp_path), "--endpoint", moto_endpoint
    )
    assert result.exit_code == 2, result.output
    assert f"{PHASE1} cannot be destroyed while {PHASE2} stands on it" in result.stderr
    assert load_record(PHASE1, tmp_path) is not None


def test_destroy_refuses_a_stack_pulumi_deployed(
    deployed_stacks: dict[str, DeploymentRecord],
    tmp_path: Path,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    copy_record(deployed_stacks[PHASE1], tmp_path, target="pulumi", endpoint_url=None)
    monkeypatch.setattr("infra.emulator.destroy", lambda *a, **k: pytest.fail("destroyed"))
    result = invoke(
        "destroy", "--stack", PHASE1, "--state-dir", str(tmp_path), "--endpoint", moto_endpoint
    )
    assert result.exit_code == 2 and "pulumi destroy" in result.stderr


def test_promote_refused_json(tmp_path: Path, moto_endpoint: str) -> None:
    result = invoke(
        "rollout", "promote", "--to", PHASE2, "--state-dir", str(tmp_path),
        "--endpoint", moto_endpoint, "--json",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    document = json_of(result)
    assert document["result"] == "refused" and PHASE1 in document["reason"]
    assert "Refused" in result.stderr
    assert load_record(PHASE2, tmp_path) is None


def test_local_down_json_without_a_platform(tmp_path: Path) -> None:
    result = invoke("local", "down", "--state-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    assert json_of(result) == {"destroyed": {}, "removed": []}
