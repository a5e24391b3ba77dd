"""The community-care intake walk-through (scripts/demo_interop.py) end to end on phase 2:
the session's moto server (serving the pool domain's token endpoint), the platform's own
seeding (the clinic systems mapped to their institutions as data), the API through the
local API gateway built from the program's declaration, doctors signing in with SRP and
TOTP, clinic systems with the client-credentials grant.

``run`` raises unless every step answers as expected; the test checks the outcome: the
refusals came from the gateway (its authorizer, before the function), every submission
landed on the one patient, both institutions' records are in the group, and the
break-glass read is flagged in the ledger.
"""

from __future__ import annotations

import json

import pytest
from walkthrough_testkit import Platform, load_script

pytestmark = pytest.mark.integration


def test_walkthrough_end_to_end(intake_platform: Platform) -> None:
    demo = load_script("demo_interop")
    lines: list[str] = []
    doc, api = intake_platform.doc, intake_platform.api
    outcome = demo.run(
        doc,
        "phase2-hospital-authority",
        api,
        say=lines.append,
        authenticators=intake_platform.authenticators,
    )
    s = outcome.statuses
    # The gateway's authorizer refused both crossings (the intake method admits only the
    # intake scope; every other method only the users' scopes).
    assert s["doctor_on_intake"] == s["machine_on_groups"] == 401
    assert json.loads(outcome.refusals["doctor_on_intake"]) == {"message": "Unauthorized"}
    assert json.loads(outcome.refusals["machine_on_groups"]) == {"message": "Unauthorized"}
    malformed = json.loads(outcome.refusals["malformed"])["error"]
    assert malformed["code"] == "invalid_source" and "PID-7" in malformed["message"]
    assert "1980" not in outcome.refusals["malformed"]
    assert json.loads(outcome.refusals["unknown_patient"])["error"]["code"] == "unknown_patient"
    assert sorted(len(ids) for ids in outcome.records.values()) == [2, 2]
    assert len(outcome.sources) == 4
    assert s["group_after_withdrawal"] == s["read_after_withdrawal"] == 403
    assert json.loads(outcome.refusals["group_after_withdrawal"])["error"]["code"] == (
        "consent_required"
    )
    assert outcome.flagged == "break_glass"
    assert lines[-1] == "Walk-through complete: every step answered as expected."
