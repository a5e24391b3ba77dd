"""Metrics computed from a generated workload's ledger entries match an independent
count of what the generator decided (a simpler implementation: lists, sorting and the
standard library's quantiles, over the generator's own record, not the entries)."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

import pytest

from app.metrics.engine import (
    ACCESS,
    BREAK_GLASS,
    DECISION,
    RESPONSE,
    RESPONSE_RATE,
    SUMMON,
    MetricsConfig,
    MetricsReport,
    SeriesRow,
    compute_metrics,
)
from infra.workload import Truth, WorkloadConfig, generate, ledger_entries

HOUR, MINUTE = 3_600_000, 60_000


@pytest.fixture(scope="module")
def workload() -> tuple[MetricsReport, Truth, int]:
    truth = Truth()
    entries = list(ledger_entries(generate(WorkloadConfig(days=30, referrals_per_day=60), truth)))
    return compute_metrics(entries), truth, len(entries)


def only(report: MetricsReport, metric: str, **breakdown: str) -> SeriesRow:
    rows = report.find(metric, "all", **breakdown)
    assert len(rows) == 1, (metric, breakdown)
    return rows[0]


def assert_matches(row: SeriesRow, values: list[float]) -> None:
    assert row.count == len(values)
    assert row.mean == pytest.approx(statistics.fmean(values), rel=1e-9)
    q = statistics.quantiles(values, n=100, method="inclusive")
    assert row.p50 == pytest.approx(q[49], rel=1e-9)
    assert row.p90 == pytest.approx(q[89], rel=1e-9)
    assert row.p99 == pytest.approx(q[98], rel=1e-9)


def test_the_workload_is_at_volume(workload: tuple[MetricsReport, Truth, int]) -> None:
    report, truth, n = workload
    assert n >= 20_000 and report.entries == n
    assert len(truth.referrals) >= 900


def test_referral_decision_time(workload: tuple[MetricsReport, Truth, int]) -> None:
    report, truth, _ = workload
    decided = [r for r in truth.referrals if r["outcome"] in ("accept", "decline")]

    def hours(rs: list[dict[str, Any]]) -> list[float]:
        return [(r["decided_ms"] - r["sent_ms"]) / HOUR for r in rs]

    assert_matches(only(report, DECISION), hours(decided))
    for phase in (1, 2, 3):
        assert_matches(
            only(report, DECISION, phase=str(phase)),
            hours([r for r in decided if r["phase"] == phase]),
        )
    for urgency in ("emergency", "urgent", "routine"):
        assert_matches(
            only(report, DECISION, urgency=urgency),
            hours([r for r in decided if r["urgency"] == urgency]),
        )
    pair = Counter((r["from"], r["to"]) for r in decided).most_common(1)[0][0]
    assert_matches(
        only(report, DECISION, from_institution=pair[0], to_institution=pair[1]),
        hours([r for r in decided if (r["from"], r["to"]) == pair]),
    )
    outcomes = Counter(r["outcome"] for r in truth.referrals)
    assert report.counters["referrals_cancelled"] == outcomes["cancel"]
    assert report.counters["referrals_undecided"] == outcomes["none"]
    # The simulated rollout brings the median down towards the seed's 1.1 h.
    medians = [only(report, DECISION, phase=str(p)).p50 for p in (1, 2, 3)]
    assert medians[0] > medians[1] > medians[2]


def test_message_response_rate_and_time(workload: tuple[MetricsReport, Truth, int]) -> None:
    report, truth, _ = workload
    window = MetricsConfig().response_window_ms
    within = [
        1.0 if r["reply_ms"] is not None and r["reply_ms"] - r["at_ms"] <= window else 0.0
        for r in truth.requests
    ]
    rate = only(report, RESPONSE_RATE)
    assert rate.count == len(truth.requests)
    assert rate.mean == pytest.approx(sum(within) / len(within))
    answered = [(r["reply_ms"] - r["at_ms"]) / MINUTE for r in truth.requests if r["reply_ms"]]
    assert_matches(only(report, RESPONSE), answered)


def test_record_accesses_per_episode(workload: tuple[MetricsReport, Truth, int]) -> None:
    report, truth, _ = workload
    # One episode per referral's patient and per break-glass patient granted access.
    episodes = len(truth.referrals) + sum(1 for b in truth.break_glass if b[2] == "success")
    per_episode = [float(len(reads)) for reads in truth.reads.values()]
    per_episode += [0.0] * (episodes - len(per_episode))
    assert_matches(only(report, ACCESS), per_episode)


def test_summon_to_join_and_break_glass(workload: tuple[MetricsReport, Truth, int]) -> None:
    report, truth, _ = workload
    joined = [(s["joined_ms"] - s["at_ms"]) / MINUTE for s in truth.summons if s["joined_ms"]]
    assert_matches(only(report, SUMMON), joined)
    assert report.counters["summons_unanswered"] == sum(
        1 for s in truth.summons if not s["joined_ms"]
    )
    uses = Counter(outcome for _, _, outcome in truth.break_glass)
    assert only(report, BREAK_GLASS, outcome="success").count == uses["success"]
    assert only(report, BREAK_GLASS, outcome="denied").count == uses["denied"]


def test_an_institution_sees_only_what_involves_it(
    workload: tuple[MetricsReport, Truth, int],
) -> None:
    _, truth, _ = workload
    scope = "victoria-general"
    entries = ledger_entries(generate(WorkloadConfig(days=30, referrals_per_day=60)))
    report = compute_metrics(entries, MetricsConfig(institution=scope))
    mine = [
        (r["decided_ms"] - r["sent_ms"]) / HOUR
        for r in truth.referrals
        if r["outcome"] in ("accept", "decline") and scope in (r["from"], r["to"])
    ]
    assert_matches(only(report, DECISION), mine)
    requests = [r for r in truth.requests if r["institution"] == scope]
    assert only(report, RESPONSE_RATE).count == len(requests)
