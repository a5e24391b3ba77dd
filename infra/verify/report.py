"""The terminal rendering of a verification report: a table, failures first, and a verdict.

The reports for privacy officers and assessors (JSON, Markdown, HTML, PDF, kept signed
in a history) are :mod:`infra.compliance`'s; the JSON is :meth:`VerifyReport.to_dict`.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from infra.controls.result import Status
from infra.verify.model import VerifyReport

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
