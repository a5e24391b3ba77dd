"""The compliance report in HTML (``compliance-<stack>.html``), one self-contained page.

Rendered from ``templates/report.html.j2`` with Jinja2, autoescaped: every value from a
deployment (resource names, evidence, gap texts) is escaped; only the diagrams' SVG,
which this program generates, is inserted as markup. No external asset (styles inline,
diagrams inline), so the page reads the same offline.
"""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape

from infra.compliance.markdown import header_rows, history_lines, reference_line, summary_lines
from infra.compliance.model import EMULATOR_BANNER, MARK, ComplianceReport
from infra.controls.result import Status

_CSS = {Status.PASS: "pass", Status.FAIL: "fail", Status.NOT_APPLICABLE: "na"}


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("infra.compliance", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(report: ComplianceReport) -> str:
    template = _environment().get_template("report.html.j2")
    return template.render(
        r=report,
        banner=EMULATOR_BANNER,
        marks=MARK,
        css=_CSS,
        header_rows=header_rows(report),
        summary=summary_lines(report),
        history=history_lines(report.history) if report.history else [],
        detailed=report.detailed_under(),
        reference=reference_line,
    )
