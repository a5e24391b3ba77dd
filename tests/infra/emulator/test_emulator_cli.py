"""The operator CLI's gates: rollout order, the policy pack failing closed, the Pulumi
target without its CLI, and the demo seeding of a deployed phase."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from infra.cli import app
from infra.emulator import DeploymentRecord, load_record
from infra.emulator.provision import Context
from infra.emulator.record import current_release
from infra.emulator.rollout import (
    load_state,
    phase_status,
    promotion_refusal,
    record_verification,
)
from infra.emulator.seed import seed_stack

PHASE1, PHASE2 = "phase1-specialist", "phase2-hospital-authority"
runner = CliRunner()


def _copy_record(record: DeploymentRecord, state_dir: Path, **changes: Any) -> DeploymentRecord:
    copy = DeploymentRecord.from_json(record.to_json())
    for key, value in changes.items():
        setattr(copy, key, value)
    copy.save(state_dir)
    return copy


def test_promote_to_phase_2_is_refused_before_phase_1_is_deployed(
    tmp_path: Path, moto_endpoint: str
) -> None:
    result = runner.invoke(
        app,
        [
            "rollout",
            "promote",
            "--to",
            PHASE2,
            "--state-dir",
            str(tmp_path),
            "--endpoint",
            moto_endpoint,
        ],
    )
    assert result.exit_code == 2, result.output
    assert "Refused" in result.output and PHASE1 in result.output
    assert load_record(PHASE2, tmp_path) is None
    assert load_state(tmp_path)["promotions"][-1]["result"] == "refused"


def test_promote_to_phase_2_is_refused_until_phase_1_is_verified(
    deployed_stacks: dict[str, DeploymentRecord], tmp_path: Path, moto_endpoint: str
) -> None:
    release = current_release()
    phase1 = _copy_record(deployed_stacks[PHASE1], tmp_path, release=release)

    refusal = promotion_refusal(PHASE2, tmp_path, release)
    assert refusal is not None and "not verified" in refusal
    result = runner.invoke(
        app,
        [
            "rollout",
            "promote",
            "--to",
            PHASE2,
            "--state-dir",
            str(tmp_path),
            "--endpoint",
            moto_endpoint,
        ],
    )
    assert result.exit_code == 2 and "not verified" in result.output
    assert load_record(PHASE2, tmp_path) is None

    record_verification(
        tmp_path, phase1, passed=False, failed_checks=["keys.rotation_enabled"], report_paths=[]
    )
    refusal = promotion_refusal(PHASE2, tmp_path, release)
    assert refusal is not None and "keys.rotation_enabled" in refusal

    record_verification(tmp_path, phase1, passed=True, failed_checks=[], report_paths=[])
    assert promotion_refusal(PHASE2, tmp_path, release) is None
    assert phase_status(PHASE1, tmp_path).verified

    # another release, or a redeploy after the verification, needs a new verification
    assert "runs release" in str(promotion_refusal(PHASE2, tmp_path, release + "-other"))
    _copy_record(phase1, tmp_path, deployed_at="2099-01-01T00:00:00+00:00")
    assert not phase_status(PHASE1, tmp_path).verified
    assert "not verified" in str(promotion_refusal(PHASE2, tmp_path, release))


def test_promotion_fails_closed_without_the_policy_pack(
    tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "infra.policies.pack", None)
    result = runner.invoke(
        app,
        [
            "rollout",
            "promote",
            "--to",
            PHASE1,
            "--state-dir",
            str(tmp_path),
            "--endpoint",
            moto_endpoint,
        ],
    )
    assert result.exit_code == 2, result.output
    assert "policy pack is unavailable" in result.output
    assert load_record(PHASE1, tmp_path) is None


def test_rollout_status_shows_each_phase(
    deployed_stacks: dict[str, DeploymentRecord], tmp_path: Path
) -> None:
    phase1 = _copy_record(deployed_stacks[PHASE1], tmp_path)
    record_verification(tmp_path, phase1, passed=True, failed_checks=[], report_paths=[])
    result = runner.invoke(
        app, ["rollout", "status", "--state-dir", str(tmp_path)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    lines = {
        line.split("│")[2].strip(): line
        for line in result.output.splitlines()
        if line.count("│") > 3
    }
    assert "yes" in lines[PHASE1].split("│")[3] and phase1.release in lines[PHASE1]
    assert lines[PHASE2].split("│")[3].strip() == "no"


def test_pulumi_target_without_the_cli_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = runner.invoke(
        app, ["deploy", "--stack", PHASE1, "--target", "pulumi", "--state-dir", str(tmp_path)]
    )
    assert result.exit_code == 3
    assert "Pulumi CLI is not installed" in result.output
    assert load_record(PHASE1, tmp_path) is None


def test_verify_without_a_record_is_an_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["verify", "--stack", PHASE1, "--state-dir", str(tmp_path)])
    assert result.exit_code == 2 and "no deployment record" in result.output


def test_seeding_creates_synthetic_users_and_register_entries(
    deployed_stacks: dict[str, DeploymentRecord], moto_endpoint: str
) -> None:
    record = deployed_stacks[PHASE1]
    institutions = ["harbour-cardiac-alliance", "lion-rock-oncology"]
    result = seed_stack(record, institutions, Context(moto_endpoint, "ap-east-1"))
    again = seed_stack(record, institutions, Context(moto_endpoint, "ap-east-1"))
    assert [u.username for u in again.users] == [u.username for u in result.users]

    cognito = boto3.session.Session().client(
        "cognito-idp", endpoint_url=moto_endpoint, region_name="ap-east-1"
    )
    pool = record.outputs["userPoolId"]
    specialists = [u for u in again.users if u.role == "specialist"]
    assert len({u.specialty for u in specialists}) >= 2
    user = cognito.admin_get_user(UserPoolId=pool, Username=specialists[0].username)
    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    assert attributes["custom:mchk_reg_no"] == specialists[0].mchk_reg_no
    assert attributes["custom:institution_id"] in institutions
    assert attributes["custom:specialty"] == specialists[0].specialty
    assert user["UserStatus"] == "CONFIRMED"
    groups = cognito.admin_list_groups_for_user(UserPoolId=pool, Username=specialists[0].username)[
        "Groups"
    ]
    assert [g["GroupName"] for g in groups] == ["specialist"]
    listed = cognito.list_users(UserPoolId=pool)["Users"]
    assert len(
        [u for u in listed if u["Username"].startswith(("dr-", "admin-", "auditor"))]
    ) == len(again.users)

    ddb = boto3.session.Session().client(
        "dynamodb", endpoint_url=moto_endpoint, region_name="ap-east-1"
    )
    item = ddb.get_item(
        TableName=record.outputs["tableNames"]["register"],
        Key={"reg_no": {"S": specialists[0].mchk_reg_no}},
    )["Item"]
    assert item["status"]["S"] == "active" and "(synthetic)" in item["name_en"]["S"]
    assert json.dumps([u.to_json() for u in again.users])  # serialisable for local.json


def test_destroy_command_lists_what_stayed(
    deployed_stacks: dict[str, DeploymentRecord],
    tmp_path: Path,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from infra.emulator import DestroyResult

    record = _copy_record(deployed_stacks[PHASE1], tmp_path)
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
    result = runner.invoke(
        app,
        ["destroy", "--stack", PHASE1, "--state-dir", str(tmp_path), "--endpoint", moto_endpoint],
    )
    assert result.exit_code == 0, result.output
    assert "kept keys-records: protected" in result.output
    assert seen == {
        "stack": PHASE1,
        "endpoint_url": moto_endpoint,
        "state_dir": tmp_path,
        "force": False,
    }
    assert load_record(PHASE1, tmp_path) == record


def test_an_api_that_cannot_start_is_reported_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.local
    from infra.cli import _start_api

    class PortTaken:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def start(self) -> str:
            raise RuntimeError("the API did not start on http://127.0.0.1:8000")

    monkeypatch.setattr(app.local, "LocalApi", PortTaken)
    server, url, note = _start_api(tmp_path, PHASE1, 8000)
    assert server is None and url is None
    assert "did not start" in note and "8000" in note
