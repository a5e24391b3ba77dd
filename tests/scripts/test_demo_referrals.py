"""The referrals walk-through (scripts/demo_referrals.py) against a real HTTP API on moto.

It runs end to end on the walk-throughs' platform (the session's moto server, the
platform's own seeding, the API served through the local API gateway built from the
program's declaration, sign-in with SRP and the TOTP challenge). ``run``
raises unless every step answers as the walk-through expects; the test checks the
outcome too: the refusal, the acceptance, the surgeon's access before and after, the
letter's text, and the decision time in the report computed from the ledger.
"""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
from pypdf import PdfReader
from walkthrough_testkit import Platform, load_script

pytestmark = pytest.mark.integration


def test_walkthrough_end_to_end(walkthrough_platform: Platform, tmp_path: Path) -> None:
    demo = load_script("demo_referrals")
    lines: list[str] = []
    doc, api = walkthrough_platform.doc, walkthrough_platform.api
    stack = next(iter(doc["stacks"]))
    outcome = demo.run(
        doc,
        stack,
        api,
        tmp_path / "out",
        say=lines.append,
        authenticators=walkthrough_platform.authenticators,
    )
    s = outcome.statuses
    assert s["no_basis"] == 422
    assert (s["send"], s["accept"]) == (201, 200)
    assert (s["group_before"], s["group_after"]) == (403, 200)
    assert s["letter"] == s["fhir"] == 200
    text = "".join(
        p.extract_text() for p in PdfReader(io.BytesIO(outcome.letter.read_bytes())).pages
    )
    assert outcome.referral_id in text and "EMERGENCY" in text and "distal radius" in text
    assert stat.S_IMODE(outcome.letter.stat().st_mode) == 0o600
    page = outcome.report.read_text(encoding="utf-8")
    assert "referral_decision_hours" in page and "data:image/png;base64," in page
    assert any(line.startswith("    referral decision time: n=1") for line in lines), lines
    assert lines[-1] == "Walk-through complete: every step answered as expected."
