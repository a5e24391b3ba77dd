"""The referrals walk-through (scripts/demo_referrals.py) against a real HTTP API on moto.

It runs end to end on the records walk-through's ``standalone_platform`` (the session's
moto server, the platform's own seeding, the API served by uvicorn on loopback). ``run``
raises unless every step answers as the walk-through expects; the test checks the
outcome too: the refusal, the acceptance, the surgeon's access before and after, the
letter's text, and the decision time in the report computed from the ledger.
"""

from __future__ import annotations

import importlib.util
import io
import stat
import sys
from pathlib import Path
from types import ModuleType

import pytest
from pypdf import PdfReader

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_walkthrough_end_to_end(moto_endpoint: str, tmp_path: Path) -> None:
    records_demo = load("demo_records")
    demo = load("demo_referrals")
    lines: list[str] = []
    with records_demo.standalone_platform(moto_endpoint) as (doc, api):
        stack = next(iter(doc["stacks"]))
        outcome = demo.run(doc, stack, api, tmp_path / "out", say=lines.append)
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
