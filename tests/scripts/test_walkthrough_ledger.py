"""The audit-ledger walk-through after the demos ran through the local API gateway:
``hub audit verify --live`` passes, ``scripts/ledger_tamper.py`` edits one entry, and the
next verification fails at that index.

On the walk-throughs' platform: the ledger holds what their requests recorded when they
ran first in the same process, and always what this test's own requests record (the
suite's workers share files out, so no order between files is assumed), each response's
head signed inline as the Lambda function signs it.
"""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner
from walkthrough_testkit import Platform, load_script

from infra.cli import app as hub_cli
from infra.standalone_platform import STANDALONE_STACK

pytestmark = pytest.mark.integration


def _live_verify(doc: dict[str, Any], stack: str) -> list[str]:
    """``hub audit verify --live`` of a platform's stack (its local.json ``doc``)."""
    outputs = doc["stacks"][stack]["outputs"]
    return [
        "audit",
        "verify",
        "--live",
        "--table",
        outputs["tableNames"]["ledger"],
        "--bucket",
        outputs["auditBucketName"],
        "--key-id",
        outputs["signingKeyArn"],
        "--endpoint",
        doc["emulatorEndpoint"],
    ]


def test_ledger_verifies_then_a_tampered_entry_is_found(walkthrough_platform: Platform) -> None:
    stack = STANDALONE_STACK
    doc = walkthrough_platform.doc
    # Requests through the gateway, signed in as a real client: each is audited, and its
    # response's head signed inline (whatever else ran on this platform before).
    import httpx

    from infra.local_platform import demo_bearer

    bearer = demo_bearer(doc, stack, walkthrough_platform.authenticators)
    doctor = next(u for u in doc["demoUsers"] if u["role"] == "doctor")
    for _ in range(5):
        me = httpx.get(f"{walkthrough_platform.api}/me", headers=bearer(doctor), timeout=30)
        assert me.status_code == 200 and me.headers["Audit-Receipt"], me.text
    live = _live_verify(doc, stack)
    runner = CliRunner()
    clean = runner.invoke(hub_cli, live)
    assert clean.exit_code == 0, clean.output
    tamper = load_script("ledger_tamper")
    assert (
        tamper.main(
            ["--index", "3", "--stack", stack, "--state-dir", str(walkthrough_platform.state_dir)]
        )
        == 0
    )
    found = runner.invoke(hub_cli, live)
    assert found.exit_code == 1 and "first bad index: 3" in found.output, found.output


def _receipt_trails(header: str) -> set[int]:
    """The trails an ``Audit-Receipt`` header names (no ``trail=``: trail 0)."""
    trails = set()
    for element in header.split(","):
        fields = dict(f.strip().split("=", 1) for f in element.split(";")[1:] if "=" in f)
        trails.add(int(fields.get("trail", "0")))
    return trails


def test_a_phase_2_platform_spreads_its_ledger_over_its_trails_and_verifies(
    intake_platform: Platform,
) -> None:
    """Phase 2's stage asks for 4 trails (hub:capacity.ledgerTrails): the platform's
    service, behind the local API gateway, sends each doctor's actions to their trail,
    signs a ledger checkpoint over the trails, and ``hub audit verify --live`` checks
    every trail. With the platform's service on one trail, no receipt names another."""
    import json

    import httpx

    from infra.local_platform import demo_bearer
    from infra.verify import load_stage

    stack = "phase2-hospital-authority"
    doc, api = intake_platform.doc, intake_platform.api
    assert doc["ledgerTrails"] == load_stage(stack).capacity.ledger_trails == 4
    bearer = demo_bearer(doc, stack, intake_platform.authenticators)
    # The session's pool is shared with the other walk-throughs, whose first doctors
    # enrolled with their own authenticator files: take the last ones.
    doctors = [u for u in doc["demoUsers"] if u["role"] == "doctor"][::-1]
    trails: set[int] = set()
    for doctor in doctors:
        me = httpx.get(f"{api}/me", headers=bearer(doctor), timeout=30)
        assert me.status_code == 200, me.text
        trails |= _receipt_trails(me.headers["Audit-Receipt"])
        if len(trails) > 1:
            break
    assert len(trails) > 1, f"{len(doctors)} doctors, all on trail {trails}"
    verified = CliRunner().invoke(
        hub_cli,
        [*_live_verify(doc, stack), "--json"],
    )
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.stdout)
    assert report["trails"] >= len(trails) > 1
    assert report["ledger_checkpoints_verified"] >= 1
