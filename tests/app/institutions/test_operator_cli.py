"""``hub institutions`` and ``hub affiliations`` against the session's service: a change
made through the operator CLI takes effect on the service's very next request."""

from __future__ import annotations

import json
import uuid

from hub_testkit import Hub
from typer.testing import CliRunner

from infra.cli import app

runner = CliRunner()


def hub_cli(hub: Hub, *args: str) -> tuple[int, str]:
    s = hub.settings
    result = runner.invoke(
        app,
        [
            *args,
            "--endpoint",
            hub.endpoint,
            "--institutions-table",
            s.table_institutions,
            "--ledger-table",
            s.table_ledger,
            "--register-table",
            s.table_register,
            "--user-pool",
            s.cognito_user_pool_id,
            "--phase",
            "3",
        ],
    )
    return result.exit_code, result.output


def test_an_institution_admitted_through_the_cli_works_on_the_next_request(hub: Hub) -> None:
    clinic = f"cli-clinic-{uuid.uuid4().hex[:6]}"
    reg_no, _ = hub.spare_number()
    token = hub.new_account(f"dr-{clinic}")

    code, out = hub_cli(
        hub, "institutions", "admit", clinic, "--name", "CLI Clinic (synthetic)",
        "--type", "private_clinic", "--json",
    )  # fmt: skip
    assert code == 0, out
    assert json.loads(out)["status"] == "admitted"
    code, out = hub_cli(
        hub, "affiliations", "add", clinic, "--reg-no", reg_no, "--username", f"dr-{clinic}",
        "--role", "doctor",
    )  # fmt: skip
    assert code == 0, out
    me = hub.client.get("/me", headers=hub.bearer(token))
    assert me.status_code == 200, me.text
    assert me.json()["institution"] == clinic and me.json()["reg_no"] == reg_no

    code, out = hub_cli(hub, "institutions", "remove", clinic)
    assert code == 0 and f"{clinic} is removed" in out
    refused = hub.client.get("/me", headers=hub.bearer(token))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "institution_not_admitted"

    code, _ = hub_cli(hub, "institutions", "readmit", clinic)
    assert code == 0
    assert hub.client.get("/me", headers=hub.bearer(token)).status_code == 200


def test_an_affiliation_removed_through_the_cli_is_refused_on_the_next_request(hub: Hub) -> None:
    reg_no, _ = hub.spare_number()
    token = hub.new_account(f"dr-cli-{reg_no.lower()}")
    code, out = hub_cli(
        hub, "affiliations", "add", "harbour-cardiac-alliance", "--reg-no", reg_no,
        "--username", f"dr-cli-{reg_no.lower()}", "--role", "doctor",
    )  # fmt: skip
    assert code == 0, out
    assert hub.client.get("/me", headers=hub.bearer(token)).status_code == 200
    code, out = hub_cli(
        hub, "affiliations", "remove", "harbour-cardiac-alliance", "--reg-no", reg_no
    )
    assert code == 0, out
    refused = hub.client.get("/me", headers=hub.bearer(token))
    assert refused.json()["error"]["code"] == "affiliation_removed"


def test_every_cli_change_is_a_ledger_entry(hub: Hub) -> None:
    start = hub.ledger_size()
    clinic = f"cli-audited-{uuid.uuid4().hex[:6]}"
    hub_cli(hub, "institutions", "admit", clinic, "--name", "Audited (synthetic)",
            "--type", "private_clinic")  # fmt: skip
    hub_cli(hub, "institutions", "suspend", clinic)
    entries = [e for e in hub.audit_entries(start) if e["resource"]["id"] == clinic]
    assert [(e["action"], e["outcome"]) for e in entries] == [
        ("create", "success"),
        ("update", "success"),
    ]
    assert all(e["actor"]["sub"] == "service:operator-cli" for e in entries)
    assert all(e["actor"]["roles"] == ["platform_admin"] for e in entries)


def test_listings_report_as_json_and_as_full_values_when_piped(hub: Hub) -> None:
    code, out = hub_cli(hub, "institutions", "list", "--json")
    assert code == 0
    listed = {i["id"]: i for i in json.loads(out)}
    assert listed["sai-kung-medical-centre"]["type"] == "private_clinic"
    code, out = hub_cli(hub, "affiliations", "list", "harbour-cardiac-alliance")
    assert code == 0
    rows = [line for line in out.splitlines() if "M20001" in line]
    assert len(rows) == 1 and "doctor" in rows[0] and "active" in rows[0]
    code, out = hub_cli(hub, "institutions", "list")
    assert "sai-kung-medical-centre (synthetic)" in out and "…" not in out


def test_refusals_are_one_line_and_exit_2(hub: Hub) -> None:
    code, out = hub_cli(
        hub, "institutions", "admit", "harbour-cardiac-alliance", "--name", "Again",
        "--type", "specialist_alliance",
    )  # fmt: skip
    assert code == 2
    assert out.strip() == "Error: institution_exists: An institution with that id exists."
    code, out = hub_cli(
        hub, "affiliations", "add", "harbour-cardiac-alliance", "--reg-no", "M99998",
        "--role", "doctor",
    )  # fmt: skip
    assert code == 2 and out.strip().startswith("Error: not_on_register:")
    assert len(out.strip().splitlines()) == 1
