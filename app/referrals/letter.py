"""The printable referral letter (PDF) that replaces the paper referral form.

Rendered in memory with reportlab, locally (no service, no font download): Helvetica for
Latin text; a paragraph with characters outside Latin-1 (a patient's words quoted in
Chinese) is set in the Adobe CID font ``MSung-Light`` (Traditional Chinese), which PDF
readers supply, so no font file is embedded or shipped.

What the letter carries, and nothing more: the referral id, dates, urgency and status;
the referring doctor (Medical Council number, institution, department) and the target
(institution, specialty, team, named doctor); the patient's identifier as issued by the
referring system; the legal basis of the disclosure; the clinical question; the ids of
the attached records (never their content); the decision. No names are held by the hub,
so none are printed. The PDF's metadata (title, subject) names the referral id only.
The letter is built for a request Cedar allowed to view the referral and is returned to
that caller only: it is never logged or stored.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from app.referrals.lifecycle import LegalBasis, PatientNotice, Referral, Urgency

CJK_FONT = "MSung-Light"
_registered = False

LEGAL_BASIS_TEXT = {
    LegalBasis.REFERRAL_FOR_CARE: "Referral for the patient's continuing care (a use directly "
    "related to the purpose of collection, Cap. 486 DPP3)",
    LegalBasis.EMERGENCY: "Emergency: disclosure needed to prevent serious harm to the patient's "
    "health (Cap. 486 s.59)",
}
NOTICE_TEXT = {
    PatientNotice.INFORMED: "the patient was informed of the referral",
    PatientNotice.CONSENTED: "the patient consented to the referral",
    PatientNotice.NONE: "the patient could not be asked",
}
URGENCY_TEXT = {
    Urgency.EMERGENCY: "EMERGENCY",
    Urgency.URGENT: "URGENT",
    Urgency.ROUTINE: "Routine",
}


def _cjk_font() -> str:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
        _registered = True
    return CJK_FONT


def _paragraph(text: str, style: ParagraphStyle) -> Paragraph:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        style = ParagraphStyle(f"{style.name}-cjk", parent=style, fontName=_cjk_font())
    # Paragraph text is markup: escape it so typed text cannot inject tags.
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def referral_letter(r: Referral, question: str, *, generated_at: str) -> bytes:
    """The letter as PDF bytes."""
    styles = getSampleStyleSheet()
    body = ParagraphStyle("letter-body", parent=styles["BodyText"])
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"Referral {r.referral_id}",
        subject="Referral letter",
        creator="Health Collaboration Hub",
        author="Health Collaboration Hub",
    )
    target = r.target
    to_lines = [f"Institution: {target.institution}"]
    if target.specialty:
        to_lines.append(f"Specialty: {target.specialty}")
    if target.team:
        to_lines.append(f"Team: {target.team}")
    if target.practitioner:
        to_lines.append(f"Doctor: Medical Council registration {target.practitioner}")
    rows = [
        ["Referral", r.referral_id],
        ["Urgency", URGENCY_TEXT[r.urgency]],
        ["Sent", r.created_at.strftime("%Y-%m-%d %H:%M UTC")],
        [
            "Status",
            r.status.value + (f" (redirected {r.redirect_count}x)" if r.redirect_count else ""),
        ],
        [
            "From",
            f"Medical Council registration {r.referrer}\n{r.from_institution}, {r.from_department}",
        ],
        ["To", "\n".join(to_lines)],
        ["Patient", f"{r.patient_id} (identifier issued by the referring system)"],
        ["Legal basis", f"{LEGAL_BASIS_TEXT[r.legal_basis]}; {NOTICE_TEXT[r.patient_notice]}"],
    ]
    if r.accepted_by:
        rows.append(["Accepted by", f"Medical Council registration {r.accepted_by}"])
    if r.decline_reason is not None:
        rows.append(["Declined", r.decline_reason.value.replace("_", " ")])
    table = Table(
        [[Paragraph(f"<b>{escape(k)}</b>", body), _paragraph(v, body)] for k, v in rows],
        colWidths=[35 * mm, 135 * mm],
    )
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 1), (-1, 1), colors.HexColor("#fde2e1"))
                if r.urgency is Urgency.EMERGENCY
                else ("BACKGROUND", (0, 1), (-1, 1), colors.white),
            ]
        )
    )
    story = [
        Paragraph("Referral letter", styles["Title"]),
        Paragraph(
            "Confidential: contains patient data. Health Collaboration Hub.", styles["Italic"]
        ),
        Spacer(1, 4 * mm),
        table,
        Spacer(1, 5 * mm),
        Paragraph("Clinical question", styles["Heading2"]),
        _paragraph(question, body),
    ]
    if r.attachments:
        story += [
            Paragraph(
                "Attached records (open them in the hub as a member of the case)",
                styles["Heading2"],
            ),
            _paragraph("\n".join(r.attachments), body),
        ]
    story += [
        Spacer(1, 8 * mm),
        Paragraph(
            escape(
                f"Generated {generated_at}. Every step of this referral is an entry in the "
                "hub's audit ledger; this letter replaces the paper referral form."
            ),
            styles["Italic"],
        ),
    ]
    doc.build(story)
    return buffer.getvalue()
