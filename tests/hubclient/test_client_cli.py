"""``hub-doctor``: bad input is one line naming the problem and exit status 2; a refusal of
the service is one line and status 1. (The commands' work is the SDK's, tested against the
service in tests/app/records/test_doctor_client.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hubclient.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    err = capsys.readouterr().err
    return int(exited.value.code or 0), err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["upload"], "Missing argument 'FILE'"),
        (["no-such-command"], "No such command"),
        (["summon", "g", "--specialty", "x", "--count", "99"], "--count"),
        (["shred", "r", "1", "--reason", "because"], "--reason must be one of"),
        (["upload", "/no/such/file", "--type", "application/dicom"], "no such file"),
        (["records"], "give a patient id or --group"),
        (["whoami"], "not signed in"),
        (["login", "--username", "dr-x"], "--api is required"),
        (["login", "--username", "dr-x", "--local", "--state-dir", "/nonexistent"], "not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.setenv("HUB_DOCTOR_HOME", str(tmp_path / "home"))
    status, err = run(capsys, *argv)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("hub-doctor: ")
    assert message.lower() in err.lower()


def test_a_demo_user_missing_from_local_json_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = tmp_path / ".hub"
    state.mkdir()
    (state / "local.json").write_text(
        json.dumps(
            {
                "emulatorEndpoint": "http://127.0.0.1:1",
                "stacks": {"s": {"outputs": {"userPoolId": "p", "userPoolClientIds": ["c"]}}},
                "demoUsers": [],
            }
        )
    )
    status, err = run(
        capsys, "login", "--username", "dr-nobody", "--local", "--state-dir", str(state),
        "--stack", "s", "--home", str(tmp_path / "home"),
    )  # fmt: skip
    assert status == 2 and "dr-nobody is not a demo user of s" in err
