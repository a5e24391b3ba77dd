"""``hub institutions`` / ``hub affiliations``: every bad input is one line naming the
problem (``Error: ...``, the CLI's convention), exit status 2, before anything is read or
written. (The commands against a live
service: tests/app/institutions/test_operator_cli.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from infra.cli import app
from infra.stage import STACK_PHASES

runner = CliRunner()
TABLES = [
    "--institutions-table", "i", "--ledger-table", "l", "--register-table", "r",
    "--endpoint", "http://127.0.0.1:9",
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["institutions", "admit", "Bad_Id", "--name", "X Y", "--type", "private_clinic"], "ID:"),
        (["institutions", "admit", "new-clinic", "--type", "private_clinic"], "--name: required"),
        (["institutions", "admit", "new-clinic", "--name", "X Y", "--type", "hospital"], "--type:"),
        (
            [
                "institutions",
                "admit",
                "new-clinic",
                "--name",
                "X Y",
                "--type",
                "ha_hospital",
                "--provider",
                "HospitalAuthority",
            ],
            "--provider and --hospital-code go together",
        ),
        (["institutions", "list", "--status", "gone"], "--status:"),
        (["institutions", "remove", "UPPER"], "ID:"),
        (["affiliations", "add", "a-clinic", "--reg-no", "M20001"], "--role: at least one"),
        (["affiliations", "add", "a-clinic", "--reg-no", "M1", "--role", "doctor"], "--reg-no:"),
        (["affiliations", "add", "a-clinic", "--reg-no", "M20001", "--role", "god"], "--role:"),
        (["affiliations", "add", "a-clinic", "--role", "doctor"], "give --reg-no"),
        (["affiliations", "list", "A Clinic"], "INSTITUTION:"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], problem: str) -> None:
    result = runner.invoke(app, [*args, *TABLES])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and problem in lines[0], lines


def test_without_a_deployment_it_says_how_to_name_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["institutions", "list", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: no deployment: pass --institutions-table, --ledger-table and "
        f"--register-table, or start `hub local up` so {tmp_path}/local.json lists "
        "phase3-private-practice"
    ]


def test_an_unknown_stack_is_named(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["institutions", "list", "--stack", "phase9", "--state-dir", str(tmp_path)]
    )
    assert result.exit_code == 2 and "--stack: expected one of" in result.output


# Each command with valid input of its own: what it does next is resolve the deployment.
EVERY_COMMAND = {
    ("institutions", "list"): [],
    ("institutions", "admit"): ["new-clinic", "--name", "X Y", "--type", "private_clinic"],
    ("institutions", "suspend"): ["a-clinic"],
    ("institutions", "remove"): ["a-clinic"],
    ("institutions", "readmit"): ["a-clinic"],
    ("institutions", "seed"): [],
    ("affiliations", "list"): ["a-clinic"],
    ("affiliations", "add"): ["a-clinic", "--reg-no", "M20001", "--role", "doctor"],
    ("affiliations", "remove"): ["a-clinic", "--reg-no", "M20001"],
}


def test_the_command_table_is_every_command() -> None:
    groups = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    registered = {
        (group, name)
        for group in ("institutions", "affiliations")
        for name in groups[group].commands
    }
    assert registered == set(EVERY_COMMAND)


@pytest.mark.parametrize(
    ("command", "args"),
    [pytest.param(*item, id=" ".join(item[0])) for item in EVERY_COMMAND.items()],
)
def test_every_command_takes_the_deployment_options(
    command: tuple[str, str], args: list[str], tmp_path: Path
) -> None:
    """The shared deployment options reach each command's deployment: a stack given
    on the command line is the one resolved."""
    result = runner.invoke(
        app, [*command, *args, "--stack", "phase9", "--state-dir", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"Error: --stack: expected one of {', '.join(STACK_PHASES)}, got 'phase9'"
    ]
