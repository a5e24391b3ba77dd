"""The pilot report: an HTML page of plots with the seed's figures as reference lines,
plus the series as CSV.

Plots are drawn with matplotlib's Agg backend (offline, no display) and embedded in the
page as base64 PNG, so ``report.html`` is one self-contained file. Reference lines are
the seed's pilot figures: referral decision time 4.2 h before the hub and 1.1 h in the
pilot; record access frequency +67 % over the first phase's; cross-department message
response rate 91 %. ``series.csv`` holds every rolled-up row (metric, period, start,
breakdown, count, mean, p50, p90, p99, total). Aggregates only: no patient reference,
no identifier of anyone, ever reaches the report.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from app.metrics.engine import (
    ACCESS,
    BREAK_GLASS,
    DECISION,
    RESPONSE,
    RESPONSE_RATE,
    SUMMON,
    MetricsReport,
    SeriesRow,
)

SEED_DECISION_BEFORE_HOURS = 4.2
SEED_DECISION_PILOT_HOURS = 1.1
SEED_ACCESS_INCREASE = 1.67
SEED_RESPONSE_RATE = 0.91


def write_csv(report: MetricsReport, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "metric",
                "period",
                "start",
                "breakdown",
                "count",
                "mean",
                "p50",
                "p90",
                "p99",
                "total",
            ]
        )
        for r in report.rows:
            writer.writerow(
                [
                    r.metric,
                    r.period,
                    r.start.isoformat() if r.start else "",
                    ";".join(f"{k}={v}" for k, v in r.breakdown),
                    r.count,
                    *(f"{x:.6g}" for x in (r.mean, r.p50, r.p90, r.p99, r.total)),
                ]
            )


def _series(report: MetricsReport, metric: str, period: str, **breakdown: str) -> list[SeriesRow]:
    return sorted(report.find(metric, period, **breakdown), key=lambda r: r.start or date.min)


def _values(report: MetricsReport, metric: str, dimension: str) -> list[str]:
    return sorted(
        {v for r in report.rows if r.metric == metric for k, v in r.breakdown if k == dimension}
    )


def _png(figure: object) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")  # type: ignore[attr-defined]
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots(report: MetricsReport) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    out: list[tuple[str, str]] = []

    def line_chart(
        title: str,
        ylabel: str,
        lines: Sequence[tuple[str, list[SeriesRow], str]],
        references: Sequence[tuple[float, str]] = (),
    ) -> None:
        figure, axes = plt.subplots(figsize=(8, 3.6))
        drawn = False
        for label, rows, stat in lines:
            points = [
                (r.start, getattr(r, stat))
                for r in rows
                if r.start is not None and not math.isnan(getattr(r, stat))
            ]
            if points:
                drawn = True
                xs: list[Any] = [p[0] for p in points]  # dates: matplotlib converts them
                axes.plot(xs, [p[1] for p in points], marker="o", ms=3, label=label)
        for value, label in references:
            axes.axhline(value, linestyle="--", linewidth=1, color="grey")
            axes.annotate(
                label,
                xy=(0.01, value),
                xycoords=("axes fraction", "data"),
                fontsize=8,
                color="dimgray",
                va="bottom",
            )
        axes.set_title(title)
        axes.set_ylabel(ylabel)
        axes.grid(alpha=0.3)
        if drawn:
            axes.legend(fontsize=8)
        else:
            axes.text(0.5, 0.5, "no data in this input", transform=axes.transAxes, ha="center")
        figure.autofmt_xdate()
        out.append((title, _png(figure)))
        plt.close(figure)

    phases = _values(report, DECISION, "phase")
    line_chart(
        "Referral decision time by phase (weekly median)",
        "hours from sent to accepted/declined",
        [(f"phase {p}", _series(report, DECISION, "week", phase=p), "p50") for p in phases]
        + [("all", _series(report, DECISION, "week"), "p50")],
        [
            (SEED_DECISION_BEFORE_HOURS, "seed: 4.2 h before"),
            (SEED_DECISION_PILOT_HOURS, "seed pilot: 1.1 h"),
        ],
    )
    line_chart(
        "Referral decision time by urgency (weekly median)",
        "hours",
        [
            (u, _series(report, DECISION, "week", urgency=u), "p50")
            for u in _values(report, DECISION, "urgency")
        ],
        [(SEED_DECISION_PILOT_HOURS, "seed pilot: 1.1 h")],
    )
    line_chart(
        "Cross-department message response rate (weekly, within the window)",
        "share of requests answered",
        [
            (f"phase {p}", _series(report, RESPONSE_RATE, "week", phase=p), "mean")
            for p in _values(report, RESPONSE_RATE, "phase")
        ]
        + [("all", _series(report, RESPONSE_RATE, "week"), "mean")],
        [(SEED_RESPONSE_RATE, "seed pilot: 91 %")],
    )
    access = _series(report, ACCESS, "week")
    baseline = access[0].mean if access else math.nan
    line_chart(
        "Record accesses per patient episode (weekly mean, by episode start)",
        "reads per episode",
        [("all", access, "mean")],
        []
        if math.isnan(baseline)
        else [(baseline * SEED_ACCESS_INCREASE, "seed: +67 % over the first week")],
    )
    line_chart(
        "Summon-to-join time (weekly median) and message response time (weekly median)",
        "minutes",
        [
            ("summon to join", _series(report, SUMMON, "week"), "p50"),
            ("message response", _series(report, RESPONSE, "week"), "p50"),
        ],
    )
    institutions = _values(report, DECISION, "to_institution")
    figure, axes = plt.subplots(figsize=(8, 3.6))
    medians, p90s = [], []
    for institution in institutions:
        rows = [
            r
            for r in report.rows
            if r.metric == DECISION
            and r.period == "all"
            and dict(r.breakdown).keys() == {"from_institution", "to_institution"}
            and dict(r.breakdown)["to_institution"] == institution
        ]
        count = sum(r.count for r in rows)
        medians.append(sum(r.p50 * r.count for r in rows) / count if count else 0.0)
        p90s.append(max((r.p90 for r in rows), default=0.0))
    positions = range(len(institutions))
    axes.bar(
        [p - 0.2 for p in positions], medians, width=0.4, label="median of pair medians (weighted)"
    )
    axes.bar([p + 0.2 for p in positions], p90s, width=0.4, label="worst pair p90")
    axes.axhline(SEED_DECISION_PILOT_HOURS, linestyle="--", color="grey", linewidth=1)
    axes.set_xticks(list(positions), institutions, rotation=20, fontsize=8)
    axes.set_ylabel("hours")
    axes.set_title("Referral decision time by receiving institution")
    axes.legend(fontsize=8)
    out.append(("Referral decision time by receiving institution", _png(figure)))
    plt.close(figure)
    line_chart(
        "Break-glass uses per week, by institution",
        "grants started",
        [
            (i, _series(report, BREAK_GLASS, "week", institution=i), "total")
            for i in _values(report, BREAK_GLASS, "institution")
        ],
    )
    return out


def _summary(report: MetricsReport) -> str:
    lines = []
    for metric, unit in (
        (DECISION, "hours"),
        (RESPONSE, "minutes"),
        (RESPONSE_RATE, "share"),
        (ACCESS, "reads"),
        (SUMMON, "minutes"),
        (BREAK_GLASS, "uses"),
    ):
        for r in report.find(metric):
            lines.append(
                f"<tr><td>{metric}</td><td>{unit}</td><td>{r.count}</td><td>{r.mean:.3g}</td>"
                f"<td>{r.p50:.3g}</td><td>{r.p90:.3g}</td><td>{r.p99:.3g}</td></tr>"
            )
    counters = "".join(
        f"<li>{html.escape(k)}: {v}</li>" for k, v in sorted(report.counters.items())
    )
    return (
        "<table><tr><th>metric</th><th>unit</th><th>n</th><th>mean</th><th>p50</th>"
        f"<th>p90</th><th>p99</th></tr>{''.join(lines)}</table><ul>{counters}</ul>"
    )


def write_report(report: MetricsReport, directory: Path, *, source: str) -> tuple[Path, Path]:
    """Write ``report.html`` and ``series.csv`` into ``directory``; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    csv_path = directory / "series.csv"
    write_csv(report, csv_path)
    figures = "".join(
        f'<figure><img alt="{html.escape(t)}" src="data:image/png;base64,{png}"/>'
        f"<figcaption>{html.escape(t)}</figcaption></figure>"
        for t, png in _plots(report)
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Health Collaboration Hub: pilot metrics</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}}
figure{{margin:1.5rem 0}}img{{max-width:100%}}</style></head><body>
<h1>Pilot metrics from the audit ledger</h1>
<p>Source: {html.escape(source)}. {report.entries} ledger entries read. Every figure is computed
from ledger entries only (see docs/referrals.md, "Metrics"); dashed lines are the seed's pilot
figures. Series: <a href="series.csv">series.csv</a>.</p>
{_summary(report)}
{figures}
</body></html>
"""
    html_path = directory / "report.html"
    html_path.write_text(page, encoding="utf-8")
    return html_path, csv_path
