"""Renderings of a verification report: terminal table, JSON report, Markdown compliance report.

The JSON report is the machine-readable record (every result with its evidence and
controls). The Markdown report is for privacy officers and auditors: per stack, each
control with the evidence that bears on it and the result, then every check in full.
Both are written per stack as ``verify-<stack>.json`` and ``compliance-<stack>.md``.

Guarantees: the reports hold resource names, configuration values and control names
only (verification never reads data objects, so no patient content can appear);
writing is deterministic for a given report.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from infra.controls.catalogue import Framework
from infra.controls.result import Status
from infra.verify.checks import CHECKS
from infra.verify.model import CheckResult, VerifyReport

_STYLE = {Status.PASS: "green", Status.FAIL: "bold red", Status.NOT_APPLICABLE: "dim"}
# How a status is shown to a reader; reports and JSON keep the status itself.
_MARK = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.NOT_APPLICABLE: "n/a"}


def _summary(report: VerifyReport) -> str:
    counts = report.counts()
    verdict = "verified" if report.passed else "NOT verified"
    return (
        f"{report.stack}: {verdict}: {counts[Status.PASS]} passed, "
        f"{counts[Status.FAIL]} failed, {counts[Status.NOT_APPLICABLE]} not applicable"
    )


def render_table(report: VerifyReport, console: Console) -> None:
    """Print the report as a rich table (failures first), then a one-line verdict."""
    table = Table(
        title=f"post-deploy verification: {report.stack}", title_justify="left", show_lines=False
    )
    table.add_column("result", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("resource", overflow="fold")
    table.add_column("evidence", overflow="fold")
    order = {Status.FAIL: 0, Status.PASS: 1, Status.NOT_APPLICABLE: 2}
    for check in sorted(report.checks, key=lambda c: order[c.status]):
        table.add_row(
            f"[{_STYLE[check.status]}]{_MARK[check.status]}[/]",
            check.id,
            check.resource,
            check.evidence,
        )
    console.print(table)
    style = "green" if report.passed else "bold red"
    console.print(f"[{style}]{_summary(report)}[/]")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _control_order(control: str) -> tuple[int, str]:
    families = list(Framework)
    family = next((n for n, f in enumerate(families) if control.startswith(f"{f} ")), len(families))
    return family, control


def _control_verdict(checks: list[CheckResult]) -> str:
    if any(c.status == Status.FAIL for c in checks):
        return _MARK[Status.FAIL]
    if any(c.status == Status.PASS for c in checks):
        return _MARK[Status.PASS]
    return _MARK[Status.NOT_APPLICABLE]


def render_markdown(report: VerifyReport) -> str:
    """The compliance report: a control summary, each control with its evidence and
    results, then what every check verifies and how to fix it."""
    lines = [
        f"# Compliance report: {report.stack}",
        "",
        f"- Result: **{'verified' if report.passed else 'NOT verified'}** ({_summary(report)})",
        f"- Generated: {report.generated_at or 'n/a'}",
        f"- Endpoint: {report.endpoint or 'AWS (default endpoints)'}",
        "",
        "Each control lists the post-deploy checks that evidence it, with what was read "
        "from the deployment. Evidence marked *as declared (emulator gap)* was checked on "
        "the declared configuration because the emulator cannot hold that property.",
        "",
        "## Controls",
        "",
        "| control | result | checks passed / failed / n/a |",
        "|---|---|---|",
    ]
    by_control: dict[str, list[CheckResult]] = {}
    for check in report.checks:
        for control in check.controls:
            by_control.setdefault(control, []).append(check)
    controls = sorted(by_control, key=_control_order)
    for control in controls:
        checks = by_control[control]
        n = {s: sum(1 for c in checks if c.status == s) for s in Status}
        lines.append(
            f"| {_cell(control)} | {_control_verdict(checks)} | "
            f"{n[Status.PASS]} / {n[Status.FAIL]} / {n[Status.NOT_APPLICABLE]} |"
        )
    lines.append("")
    for control in controls:
        checks = by_control[control]
        lines += [
            f"### {control}: {_control_verdict(checks)}",
            "",
            "| result | check | resource | evidence |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {_MARK[c.status]} | {c.id} | {_cell(c.resource)} | {_cell(c.evidence)} |"
            for c in checks
        ]
        lines.append("")
    lines += [
        "## Checks",
        "",
        "| check | what it verifies | remediation when it fails |",
        "|---|---|---|",
    ]
    for check_id in sorted({c.id for c in report.checks}):
        spec = CHECKS[check_id]
        lines.append(f"| {check_id} | {_cell(spec.title)} | {_cell(spec.remediation)} |")
    lines.append("")
    return "\n".join(lines)


def write_reports(report: VerifyReport, out_dir: Path) -> list[Path]:
    """Write ``verify-<stack>.json`` and ``compliance-<stack>.md`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"verify-{report.stack}.json"
    json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    markdown_path = out_dir / f"compliance-{report.stack}.md"
    markdown_path.write_text(render_markdown(report), encoding="utf-8")
    return [json_path, markdown_path]
