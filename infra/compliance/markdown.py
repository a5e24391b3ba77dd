"""The compliance report in Markdown (``compliance-<stack>.md``): the model, section by
section, in the order of :mod:`infra.compliance.model`.

Evidence data is shown as compact JSON under each check (cut at a few hundred
characters; the JSON report holds it whole). Table cells never break: ``|`` and line
breaks are escaped.
"""

from __future__ import annotations

import json
from typing import Any

from infra.compliance.model import EMULATOR_BANNER, MARK, ComplianceReport, ControlView
from infra.controls.result import Status

DATA_PREVIEW = 300


def cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def data_preview(data: Any, limit: int = DATA_PREVIEW) -> str:
    if data is None:
        return ""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def header_rows(report: ComplianceReport) -> list[tuple[str, str]]:
    """(field, value) rows of the header, one set per stack."""
    rows = [("generated", report.header.generated_at or "n/a")]
    for stack in report.header.stacks:
        c = report.header.contexts.get(stack)
        prefix = f"{stack}: " if len(report.header.stacks) > 1 else ""
        if c is None:
            rows.append((f"{prefix}context", "not recorded"))
            continue
        rows += [
            (
                f"{prefix}release",
                f"{c.release} (program {c.program_version}, commit {c.commit or 'unknown'})",
            ),
            (f"{prefix}deployed release", c.deployed_release or "unknown"),
            (f"{prefix}account / region", f"{c.account_id} / {c.region}"),
            (
                f"{prefix}target",
                "AWS" if not c.emulated else f"emulator ({c.endpoint or 'endpoint not recorded'})",
            ),
            (f"{prefix}run by", f"{c.operator} as {c.caller_arn or 'unknown AWS identity'}"),
        ]
    if len(report.header.stacks) == 1:
        rows.insert(0, ("stack", report.header.stacks[0]))
    return rows


def summary_lines(report: ComplianceReport) -> list[str]:
    n = report.counts
    lines = [
        f"Result: {report.verdict}: {n['pass']} checks passed, {n['fail']} failed, "
        f"{n['not_applicable']} not applicable, over {len(report.header.stacks)} stack(s).",
    ]
    for ledger in report.ledgers:
        lines.append(f"Audit ledger ({ledger.stack}): {MARK[ledger.status]}: {ledger.evidence}")
    if report.failed:
        lines.append(
            "Failing checks: " + "; ".join(f"{c.id} on {c.resource}" for c in report.failed)
        )
    if report.gaps:
        lines.append(
            f"{len(report.gaps)} emulator gaps weaken "
            f"{len({c for g in report.gaps for c in g.controls})} controls (section Emulator gaps)."
        )
    return lines


def _control(view: ControlView) -> list[str]:
    lines = [
        f"#### {view.control.id}: {MARK[view.status]}",
        "",
        view.control.title + ".",
        "",
        "| result | check | resource | evidence | data |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {MARK[c.status]} | {c.id} | {cell(c.resource)} | {cell(c.evidence)} | "
        f"{'`' + cell(data_preview(c.data)) + '`' if c.data is not None else ''} |"
        for c in view.checks
    ]
    if view.gaps:
        lines += ["", "Weakened by emulator gaps:"]
        lines += [f"- {g.stack} {g.resource} `{g.property}`: {g.not_enforced}" for g in view.gaps]
    lines += ["", "Remediation:"]
    lines += [f"- {check_id}: {text}" for check_id, text in view.remediation]
    lines.append("")
    return lines


def render_markdown(report: ComplianceReport) -> str:
    lines = [f"# {report.header.title}", ""]
    if report.header.emulated:
        lines += [f"> **{EMULATOR_BANNER}**", ""]
    lines += ["| | |", "|---|---|"]
    lines += [f"| {cell(k)} | {cell(v)} |" for k, v in header_rows(report)]
    lines += ["", "## Executive summary", ""]
    lines += [f"- {line}" for line in summary_lines(report)]
    lines += ["", "## Scope", ""]
    lines += [f"- {line}" for line in report.scope]
    if report.history:
        lines += ["", "## Changes since the previous report", ""]
        lines += [f"- {line}" for line in history_lines(report.history)]
    detailed = report.detailed_under()
    for framework in report.frameworks:
        lines += ["", f"## {framework.framework}", ""]
        for req in framework.requirements:
            status = MARK[req.status] if req.status is not None else "not evidenced here"
            lines += [f"### {req.requirement}: {status}", ""]
            if req.note:
                lines += [req.note, ""]
            for view in req.controls:
                if detailed[view.control.id] == str(req.requirement):
                    lines += _control(view)
                else:
                    lines += [f"- {reference_line(view, detailed[view.control.id])}", ""]
    lines += ["", "## Audit ledger integrity", ""]
    if not report.ledgers:
        lines.append("No ledger was named by the deployment's outputs.")
    for ledger in report.ledgers:
        lines += [f"### {ledger.stack}: {MARK[ledger.status]}", "", ledger.evidence, ""]
        lines += ["| | |", "|---|---|"]
        for key, value in ledger.data.items():
            if key != "findings":
                lines.append(f"| {cell(key)} | {cell(data_preview(value, 200))} |")
        for finding in ledger.data.get("findings") or []:
            lines.append(
                f"| finding | {cell(finding.get('kind'))} at {finding.get('index')}: "
                f"{cell(finding.get('message'))} |"
            )
        lines.append("")
    lines += ["## Emulator gaps", ""]
    if not report.gaps:
        lines.append("None: the deployment record lists no gap.")
    else:
        lines += [
            "| stack | resource | property | not enforced | why | controls weakened | covered by |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {g.stack} | {cell(g.resource)} ({cell(g.type)}) | {cell(g.property)} | "
            f"{cell(g.not_enforced)} | {cell(g.reason)} | {', '.join(g.controls) or '-'} | "
            f"{cell(', '.join(g.covered_by))} |"
            for g in report.gaps
        ]
    lines.append("")
    for stack, svg in report.diagrams.items():
        if svg:
            lines += [f"## Diagram: {stack}", "", f"![{stack}](diagram-{stack}.svg)", ""]
    return "\n".join(lines)


def reference_line(view: ControlView, detailed_under: str) -> str:
    """A control shown in full elsewhere: its status and its checks' results, in one line."""
    counts = {st: sum(1 for c in view.checks if c.status == st) for st in Status}
    return (
        f"{view.control.id}: {MARK[view.status]} ({view.control.title}; "
        f"{counts[Status.PASS]} passed, {counts[Status.FAIL]} failed, "
        f"{counts[Status.NOT_APPLICABLE]} n/a; checks in full under {detailed_under})"
    )


def history_lines(history: dict[str, Any]) -> list[str]:
    lines = [f"This report: `{history.get('digest')}`"]
    previous = history.get("previous")
    if not previous:
        lines.append("No previous report of this scope in the history: this is the first.")
        return lines
    lines.append(f"Previous: `{previous}` ({history.get('previous_generated_at', '')})")
    diff = history.get("diff") or {}
    changed = diff.get("changed") or []
    if not (changed or diff.get("added") or diff.get("removed") or diff.get("header")):
        lines.append("No check changed status.")
    for field_, (old, new) in (diff.get("header") or {}).items():
        lines.append(f"{field_}: {old} -> {new}")
    for change in changed:
        lines.append(
            f"{change['check']} on {change['resource']}: {MARK[Status(change['from'])]} -> "
            f"{MARK[Status(change['to'])]}"
        )
    for key in ("added", "removed"):
        for item in diff.get(key) or []:
            lines.append(f"{key}: {item['check']} on {item['resource']} ({item['status']})")
    return lines
