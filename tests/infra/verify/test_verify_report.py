"""The terminal rendering of a report, and the JSON it is kept as (the assessor's
renderings are tested in tests/infra/compliance)."""

from __future__ import annotations

import json

from rich.console import Console

from infra.controls.result import Status
from infra.verify.checks import CHECKS
from infra.verify.model import CheckResult, VerifyReport
from infra.verify.report import render_table


def _result(check_id: str, resource: str, status: Status, evidence: str) -> CheckResult:
    spec = CHECKS[check_id]
    return CheckResult(
        check_id, spec.title, resource, status, evidence, [str(r) for r in spec.requirements]
    )


def _report() -> VerifyReport:
    return VerifyReport(
        "phase1-specialist",
        [
            _result(
                "keys.rotation_enabled",
                "records key k1",
                Status.FAIL,
                "k1: automatic rotation is off",
            ),
            _result("keys.enabled", "records key k1", Status.PASS, "k1: KeyState=Enabled"),
            _result(
                "buckets.access_logging", "logs", Status.NOT_APPLICABLE, "logs | is the target"
            ),
        ],
        endpoint="http://127.0.0.1:1",
        generated_at="2026-01-01T00:00:00+00:00",
    )


def test_table_lists_failures_first_with_the_verdict() -> None:
    console = Console(record=True, width=200)
    render_table(_report(), console)
    text = console.export_text()
    assert text.index("keys.rotation_enabled") < text.index("keys.enabled")
    assert "phase1-specialist: NOT verified: 1 passed, 1 failed, 1 not applicable" in text


def test_json_round_trips_with_its_evidence_data() -> None:
    report = _report()
    data = report.to_dict()
    assert data["passed"] is False
    assert data["counts"] == {"pass": 1, "fail": 1, "not_applicable": 1}
    assert [c["status"] for c in data["checks"]] == ["fail", "pass", "not_applicable"]
    assert data["checks"][0]["controls"] == [
        str(r) for r in CHECKS["keys.rotation_enabled"].requirements
    ]
    assert VerifyReport.from_dict(json.loads(json.dumps(data))) == report
