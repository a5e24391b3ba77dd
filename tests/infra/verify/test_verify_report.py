"""Renderings of a report: the terminal table, the JSON report, the Markdown compliance report."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from infra.controls.result import Status
from infra.verify.checks import CHECKS
from infra.verify.model import CheckResult, VerifyReport
from infra.verify.report import render_markdown, render_table, write_reports


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


def test_markdown_names_each_control_with_evidence_and_result() -> None:
    markdown = render_markdown(_report())
    assert "**NOT verified**" in markdown
    assert (
        "### CIS AWS 3.6 Ensure rotation for customer-created symmetric CMKs is enabled: FAIL"
        in markdown
    )
    # a control evidenced by a failing and a passing check fails
    assert "### ISO 27799 10.1.2 Key management: FAIL" in markdown
    assert (
        "| FAIL | keys.rotation_enabled | records key k1 | k1: automatic rotation is off |"
        in markdown
    )
    assert "logs \\| is the target" in markdown  # table cells stay one cell
    # ISO themes come before Cap. 486 principles, then CIS
    assert (
        markdown.index("### ISO 27799")
        < markdown.index("### Cap. 486")
        < markdown.index("### CIS AWS")
    )
    assert CHECKS["keys.rotation_enabled"].remediation in markdown


def test_write_reports_json_and_markdown(tmp_path: Path) -> None:
    json_path, markdown_path = write_reports(_report(), tmp_path / "out")
    assert json_path.name == "verify-phase1-specialist.json"
    assert markdown_path.name == "compliance-phase1-specialist.md"
    data = json.loads(json_path.read_text())
    assert data["passed"] is False
    assert data["counts"] == {"pass": 1, "fail": 1, "not_applicable": 1}
    assert [c["status"] for c in data["checks"]] == ["fail", "pass", "not_applicable"]
    assert data["checks"][0]["id"] == "keys.rotation_enabled"
    assert data["checks"][0]["controls"] == [
        str(r) for r in CHECKS["keys.rotation_enabled"].requirements
    ]


def test_table_lists_failures_first_with_the_verdict() -> None:
    console = Console(record=True, width=200)
    render_table(_report(), console)
    text = console.export_text()
    assert text.index("keys.rotation_enabled") < text.index("keys.enabled")
    assert "phase1-specialist: NOT verified: 1 passed, 1 failed, 1 not applicable" in text
