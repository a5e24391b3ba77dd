"""The compliance report as a PDF (``compliance-<stack>.pdf``), rendered locally.

reportlab (platypus) lays out the same model the Markdown and HTML show, section by
section; the phase diagrams are the same SVG, drawn into the page as vector graphics by
svglib. Nothing is fetched and no system library is needed, so it renders on a fresh
machine. Output is invariant (no creation time or random document id), so the same
report gives the same bytes.

Why not WeasyPrint (HTML to PDF): it needs Pango and its font stack from the system,
which a fresh machine may lack; headless Chromium is only in the browser tier.
"""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from infra.compliance.markdown import (
    data_preview,
    header_rows,
    history_lines,
    reference_line,
    summary_lines,
)
from infra.compliance.model import EMULATOR_BANNER, MARK, ComplianceReport
from infra.controls.result import Status

_COLOUR = {
    Status.PASS: colors.HexColor("#176117"),
    Status.FAIL: colors.HexColor("#b00020"),
    Status.NOT_APPLICABLE: colors.HexColor("#666666"),
}
_WIDTH = A4[0] - 30 * mm


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    small = ParagraphStyle("small", parent=base["BodyText"], fontSize=7.5, leading=9)
    return {
        "title": ParagraphStyle("title", parent=base["Title"]),
        "h2": ParagraphStyle("h2", parent=base["Heading2"]),
        "h3": ParagraphStyle("h3", parent=base["Heading3"], fontSize=10.5, spaceBefore=8),
        "h4": ParagraphStyle("h4", parent=base["Heading4"], fontSize=9.5, spaceBefore=6),
        "body": ParagraphStyle("body", parent=base["BodyText"], fontSize=9, leading=11),
        "small": small,
        "banner": ParagraphStyle(
            "banner", parent=base["BodyText"], fontSize=9, leading=11, fontName="Helvetica-Bold"
        ),
    }


def _p(text: Any, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(str(text)), style)


def _mark(status: Status | None, style: ParagraphStyle) -> Paragraph:
    if status is None:
        return Paragraph("not evidenced here", style)
    return Paragraph(
        f'<font color="{_COLOUR[status].hexval()}"><b>{MARK[status]}</b></font>', style
    )


def _table(rows: list[list[Any]], widths: list[float], header: bool = True) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    commands: list[tuple[Any, ...]] = [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#ccccdd")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    if header:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeff")))
    table.setStyle(TableStyle(commands))
    return table


def _diagram(svg: str) -> Flowable | None:
    from svglib.svglib import svg2rlg

    drawing = svg2rlg(io.BytesIO(svg.encode("utf-8")))
    if drawing is None or not drawing.width:
        return None
    scale = min(1.0, _WIDTH / drawing.width, (A4[1] - 60 * mm) / drawing.height)
    drawing.width, drawing.height = drawing.width * scale, drawing.height * scale
    drawing.scale(scale, scale)
    return drawing


def render_pdf(report: ComplianceReport) -> bytes:
    s = _styles()
    story: list[Flowable] = [_p(report.header.title, s["title"])]
    if report.header.emulated:
        banner = Table([[_p(EMULATOR_BANNER, s["banner"])]], colWidths=[_WIDTH])
        banner.setStyle(
            TableStyle(
                [
                    ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#fff3cd")),
                    ("BOX", (0, 0), (-1, -1), 2, colors.HexColor("#b8860b")),
                    ("TOPPADDING", (0, 0), (-1, -1), 6),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
                ]
            )
        )
        story += [banner, Spacer(1, 4 * mm)]
    story.append(
        _table(
            [[_p(k, s["small"]), _p(v, s["small"])] for k, v in header_rows(report)],
            [45 * mm, _WIDTH - 45 * mm],
            header=False,
        )
    )
    story.append(_p("Executive summary", s["h2"]))
    story += [_p(f"- {line}", s["body"]) for line in summary_lines(report)]
    story.append(_p("Scope", s["h2"]))
    story += [_p(f"- {line}", s["body"]) for line in report.scope]
    if report.history:
        story.append(_p("Changes since the previous report", s["h2"]))
        story += [_p(f"- {line}", s["body"]) for line in history_lines(report.history)]
    widths = [12 * mm, 38 * mm, 45 * mm, _WIDTH - 95 * mm]
    detailed = report.detailed_under()
    for framework in report.frameworks:
        story.append(_p(str(framework.framework), s["h2"]))
        for req in framework.requirements:
            story.append(
                Paragraph(
                    f"{escape(str(req.requirement))}: "
                    + (
                        f'<font color="{_COLOUR[req.status].hexval()}">{MARK[req.status]}</font>'
                        if req.status is not None
                        else "not evidenced here"
                    ),
                    s["h3"],
                )
            )
            if req.note:
                story.append(_p(req.note, s["body"]))
            for view in req.controls:
                if detailed[view.control.id] != str(req.requirement):
                    story.append(
                        _p(f"- {reference_line(view, detailed[view.control.id])}", s["small"])
                    )
                    continue
                rows: list[list[Any]] = [
                    [_p(h, s["small"]) for h in ("result", "check", "resource", "evidence")]
                ]
                for c in view.checks:
                    evidence = escape(c.evidence)
                    if c.data is not None:
                        evidence += (
                            '<br/><font color="#555555">data: '
                            + escape(data_preview(c.data, 120))
                            + "</font>"
                        )
                    rows.append(
                        [
                            _mark(c.status, s["small"]),
                            _p(c.id, s["small"]),
                            _p(c.resource, s["small"]),
                            Paragraph(evidence, s["small"]),
                        ]
                    )
                block: list[Flowable] = [
                    Paragraph(
                        f"{escape(view.control.id)}: "
                        f'<font color="{_COLOUR[view.status].hexval()}">{MARK[view.status]}'
                        f"</font>: {escape(view.control.title)}",
                        s["h4"],
                    ),
                    _table(rows, widths),
                ]
                for gap in view.gaps:
                    block.append(
                        _p(
                            f"Weakened by emulator gap: {gap.stack} {gap.resource} "
                            f"{gap.property}: {gap.not_enforced}",
                            s["small"],
                        )
                    )
                for check_id, text in view.remediation:
                    block.append(_p(f"Remediation ({check_id}): {text}", s["small"]))
                story.append(KeepTogether(block[:2]))
                story += block[2:]
    story.append(_p("Audit ledger integrity", s["h2"]))
    if not report.ledgers:
        story.append(_p("No ledger was named by the deployment's outputs.", s["body"]))
    for ledger in report.ledgers:
        story.append(
            Paragraph(
                f"{escape(ledger.stack)}: <font color="
                f'"{_COLOUR[ledger.status].hexval()}">{MARK[ledger.status]}</font>',
                s["h3"],
            )
        )
        story.append(_p(ledger.evidence, s["body"]))
        rows = [
            [_p(k, s["small"]), _p(data_preview(v, 200), s["small"])]
            for k, v in ledger.data.items()
            if k != "findings"
        ]
        rows += [
            [
                _p("finding", s["small"]),
                _p(f"{f.get('kind')} at {f.get('index')}: {f.get('message')}", s["small"]),
            ]
            for f in ledger.data.get("findings") or []
        ]
        if rows:
            story.append(_table(rows, [45 * mm, _WIDTH - 45 * mm], header=False))
    story.append(_p("Emulator gaps", s["h2"]))
    if not report.gaps:
        story.append(_p("None: the deployment record lists no gap.", s["body"]))
    else:
        rows = [
            [_p(h, s["small"]) for h in ("stack / resource", "not enforced", "why", "controls")]
        ]
        rows += [
            [
                _p(f"{g.stack}: {g.resource} ({g.property})", s["small"]),
                _p(g.not_enforced, s["small"]),
                _p(g.reason, s["small"]),
                _p(", ".join(g.controls) or "-", s["small"]),
            ]
            for g in report.gaps
        ]
        story.append(_table(rows, [40 * mm, 55 * mm, 55 * mm, _WIDTH - 150 * mm]))
    for stack, svg in report.diagrams.items():
        drawing = _diagram(svg) if svg else None
        if drawing is not None:
            story += [_p(f"Diagram: {stack}", s["h2"]), drawing]
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=report.header.title,
        author="hub verify",
        invariant=1,
    )
    doc.build(story)
    return out.getvalue()
