"""Writing the compliance reports: what ``hub verify`` and ``hub report`` call.

Per stack (:func:`write_stack_report`): the verification's JSON (``verify-<stack>.json``,
with its header), kept in the history first (content-addressed, signed with the stack's
ledger key, archived in its Object Lock audit bucket, diffed with the previous one),
then the report in Markdown, HTML and PDF (``compliance-<stack>.{md,html,pdf}``) showing
its digest and the diff, and the stack's diagram (``diagram-<stack>.svg``).

For the hub (:func:`write_hub_report`): the latest kept report of each stack, combined
into ``reports/hub/compliance-hub.{json,md,html,pdf}``, kept in the ``hub`` history and
signed with the core's (phase 1) ledger key.

Guarantees: the history entry is written before any rendering, so a report that
rendered also exists, signed or saying why not, in the history; a diagram that cannot
be drawn leaves the report without it and says so in the result, never fails the run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.compliance import history
from infra.compliance.html import render_html
from infra.compliance.markdown import render_markdown
from infra.compliance.model import ComplianceReport, build_hub_report, build_report
from infra.compliance.pdf import render_pdf
from infra.verify.model import VerifyReport

HUB_SCOPE = "hub"


@dataclass(frozen=True)
class Written:
    scope: str
    paths: tuple[Path, ...]
    kept: history.Kept
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "paths": [str(p) for p in self.paths],
            "history": self.kept.to_json(),
            "notes": list(self.notes),
        }


def history_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "reports" / "history"


def signer_and_archive(
    record: Any, clients: Any
) -> tuple[history.ReportSigner | None, history.Archive | None]:
    """The stack's ledger signing key (KMS) and Object Lock audit bucket, from its
    outputs; ``clients`` is a :class:`infra.verify.clients.ClientFactory`."""
    from app.ledger.checkpoint import KmsHeadSigner

    outputs: Mapping[str, Any] = getattr(record, "outputs", {}) or {}
    key = outputs.get("signingKeyArn")
    bucket = outputs.get("auditBucketName")
    signer = KmsHeadSigner(clients("kms"), str(key)) if key else None
    archive = history.Archive(clients("s3"), str(bucket)) if bucket else None
    return signer, archive


def _diagram(record: Any) -> tuple[str, str | None]:
    from infra.diagrams import dot_source, render_svg

    try:
        return render_svg(dot_source(record)), None
    except Exception as error:
        # the report stands without its picture, and says so
        return "", f"diagram not drawn: {type(error).__name__}: {error}"


def _render(report: ComplianceReport, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, content in (
        ("md", render_markdown(report)),
        ("html", render_html(report)),
    ):
        path = out_dir / f"{stem}.{suffix}"
        path.write_text(content, encoding="utf-8")
        paths.append(path)
    pdf = out_dir / f"{stem}.pdf"
    pdf.write_bytes(render_pdf(report))
    paths.append(pdf)
    for stack, svg in report.diagrams.items():
        if svg:
            path = out_dir / f"diagram-{stack}.svg"
            path.write_text(svg, encoding="utf-8")
            paths.append(path)
    return paths


def write_stack_report(
    report: VerifyReport,
    record: Any,
    out_dir: Path,
    *,
    state_dir: Path,
    signer: history.ReportSigner | None = None,
    archive: history.Archive | None = None,
) -> Written:
    """Keep, then render, one stack's report (see the module docstring)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = report.to_dict()
    json_path = out_dir / f"verify-{report.stack}.json"
    json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    kept = history.keep(
        document, report.stack, history_dir(state_dir), signer=signer, archive=archive
    )
    compliance = build_report(report, record)
    compliance.history = kept.history()
    svg, note = _diagram(record)
    compliance.diagrams = {report.stack: svg}
    paths = [json_path, *_render(compliance, out_dir, f"compliance-{report.stack}")]
    notes = tuple(n for n in (note, _kept_note(kept)) if n)
    return Written(report.stack, tuple(paths), kept, notes)


def _kept_note(kept: history.Kept) -> str | None:
    parts = []
    if kept.signature_error:
        parts.append(f"report kept unsigned: {kept.signature_error}")
    if kept.archive_error:
        parts.append(f"not archived in the audit bucket: {kept.archive_error}")
    return "; ".join(parts) or None


def latest_kept(state_dir: Path, stack: str) -> VerifyReport | None:
    """The latest report of ``stack`` in the history, read back."""
    entries = history.history_of(history_dir(state_dir), stack)
    if not entries:
        return None
    path = history_dir(state_dir) / stack / f"{entries[-1]['digest']}.json"
    return VerifyReport.from_dict(json.loads(path.read_text()))


def write_hub_report(
    reports: Sequence[VerifyReport],
    records: Mapping[str, Any],
    out_dir: Path,
    *,
    state_dir: Path,
    signer: history.ReportSigner | None = None,
    archive: history.Archive | None = None,
) -> Written:
    """Keep, then render, the hub's report over ``reports`` (one per stack)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {
        "scope": HUB_SCOPE,
        "generated_at": max((r.generated_at for r in reports), default=""),
        "passed": bool(reports) and all(r.passed for r in reports),
        "stacks": [r.to_dict() for r in reports],
    }
    json_path = out_dir / "compliance-hub.json"
    json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    kept = history.keep(document, HUB_SCOPE, history_dir(state_dir), signer=signer, archive=archive)
    compliance = build_hub_report(reports, records, title="Compliance report: the hub")
    compliance.history = kept.history()
    notes = []
    for report in reports:
        record = records.get(report.stack)
        svg, note = _diagram(record) if record is not None else ("", None)
        compliance.diagrams[report.stack] = svg
        if note:
            notes.append(f"{report.stack}: {note}")
    paths = [json_path, *_render(compliance, out_dir, "compliance-hub")]
    kept_note = _kept_note(kept)
    return Written(
        HUB_SCOPE, tuple(paths), kept, tuple([*notes, *([kept_note] if kept_note else [])])
    )
