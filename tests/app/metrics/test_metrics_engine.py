"""The metrics engine on small hand-built ledgers: each definition's edge, exactly."""

from __future__ import annotations

import math
import statistics

from hypothesis import given
from hypothesis import strategies as st

from app.ledger.entries import Action, Actor, AuditEntry, Outcome, Resource, ResourceType
from app.metrics.engine import (
    ACCESS,
    DECISION,
    RESPONSE,
    RESPONSE_RATE,
    SUMMON,
    MetricsConfig,
    compute_metrics,
    percentile,
)

H, M, D = 3_600_000, 60_000, 86_400_000
T0 = 1_780_000_000_000
REF = "pt1-" + "ab" * 32
_seq = iter(range(10**9))


def entry(
    at: int,
    action: Action,
    kind: ResourceType,
    rid: str,
    *,
    inst: str = "ia",
    reg: str = "M10001",
    facts: dict[str, str] | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    patient: str | None = None,
) -> AuditEntry:
    return AuditEntry(
        sequence=next(_seq),
        timestamp_ms=at,
        actor=Actor("anonymous", (), reg, inst),
        action=action,
        resource=Resource(kind, rid, patient),
        outcome=outcome,
        reason="p",
        request_id="r",
        facts=facts or {},
    )


def referral(
    at: int, op: str, rid: str, inst: str, urgency: str = "urgent", phase: str = "1"
) -> AuditEntry:
    verb = {"referral.send": Action.CREATE, "referral.accept": Action.JOIN}.get(op, Action.UPDATE)
    facts = {"op": op, "urgency": urgency, "phase": phase, "to_institution": "ib"}
    return entry(at, verb, ResourceType.REFERRAL, rid, inst=inst, facts=facts)


def message(at: int, group: str, inst: str, dept: str) -> AuditEntry:
    facts = {"op": "message.send", "group": group, "department": dept, "phase": "2"}
    return entry(at, Action.CREATE, ResourceType.MESSAGE, f"m{at}", inst=inst, facts=facts)


def test_decision_time_from_send_to_first_decision_redirects_included() -> None:
    report = compute_metrics(
        [
            referral(T0, "referral.send", "r1", "ia", "emergency"),
            referral(T0 + H, "referral.redirect", "r1", "ib"),
            referral(T0 + 3 * H, "referral.accept", "r1", "ic"),
            referral(T0 + 4 * H, "referral.complete", "r1", "ic"),  # not a decision
            referral(T0, "referral.send", "r2", "ia"),
            referral(T0 + H // 2, "referral.decline", "r2", "ib"),
            referral(T0, "referral.send", "r3", "ia"),
            referral(T0 + H, "referral.cancel", "r3", "ia"),
            referral(T0, "referral.send", "r4", "ia"),  # never decided
            referral(T0 + H, "referral.accept", "r0", "ib"),  # sent before the input: no time
        ]
    )
    [emergency] = report.find(DECISION, urgency="emergency")
    assert (emergency.count, emergency.mean) == (1, 3.0)
    [pair] = report.find(DECISION, from_institution="ia", to_institution="ic")
    assert pair.count == 1
    [everything] = report.find(DECISION)
    assert (everything.count, everything.total) == (2, 3.5)
    assert report.counters["referrals_cancelled"] == 1
    assert report.counters["referrals_undecided"] == 1
    assert report.counters["referrals_redirected"] == 1


def test_message_turns_requests_and_the_window() -> None:
    report = compute_metrics(
        [
            message(T0, "g", "ia", "emergency-medicine"),
            message(T0 + 5 * M, "g", "ia", "emergency-medicine"),  # same turn
            message(T0 + 30 * M, "g", "ib", "general-surgery"),  # answers at 30 min
            message(T0 + 150 * M, "g", "ia", "emergency-medicine"),  # answers late (120 min)
            message(T0 + 10 * M, "h", "ia", "cardiology"),  # never answered
            message(T0 + 11 * M, "h", "ia", "cardiology"),
        ],
        MetricsConfig(response_window_ms=60 * M),
    )
    [rate] = report.find(RESPONSE_RATE)
    # Requests: g@0 (answered in time), g@30 (late), g@150 (last), h@10 (never).
    assert (rate.count, rate.total) == (4, 1.0)
    [time] = report.find(RESPONSE)
    assert sorted([time.count, time.mean]) == [2, 75.0]
    assert report.find(RESPONSE_RATE, institution="ib")[0].count == 1


def test_summon_to_join_ignores_individually_invited_joiners() -> None:
    report = compute_metrics(
        [
            entry(T0, Action.SHARE, ResourceType.GROUP, "g1"),  # summon
            entry(T0 + 5 * M, Action.SHARE, ResourceType.MEMBERSHIP, "g1:M10007"),  # invite M7
            entry(T0 + 6 * M, Action.JOIN, ResourceType.GROUP, "g1", reg="M10007"),  # invite's join
            entry(
                T0 + 20 * M, Action.JOIN, ResourceType.GROUP, "g1", reg="M10008"
            ),  # summon's join
            entry(T0 + 30 * M, Action.JOIN, ResourceType.GROUP, "g1", reg="M10009"),  # later: no
            entry(T0, Action.SHARE, ResourceType.GROUP, "g2"),  # unanswered summon
        ]
    )
    [summon] = report.find(SUMMON)
    assert (summon.count, summon.mean) == (1, 20.0)
    assert report.counters["summons_unanswered"] == 1


def test_record_access_episodes_split_on_the_gap() -> None:
    read = lambda at, inst="ia": entry(  # noqa: E731
        at, Action.READ, ResourceType.RECORD, "rec1", inst=inst, patient=REF
    )
    report = compute_metrics(
        [
            entry(T0, Action.CREATE, ResourceType.GROUP, "g1", patient=REF),
            read(T0 + H),
            read(T0 + 2 * D, "ib"),
            read(T0 + 20 * D),  # 18 days later: a new episode
            entry(
                T0 + 21 * D,
                Action.READ,
                ResourceType.RECORD,
                "x",
                patient=REF,
                outcome=Outcome.DENIED,
            ),
        ],
        MetricsConfig(episode_gap_ms=14 * D),
    )
    [overall] = report.find(ACCESS)
    assert (overall.count, overall.total) == (2, 3.0)
    [b] = report.find(ACCESS, institution="ib")
    assert (b.count, b.total) == (1, 1.0)
    scoped = compute_metrics(
        [read(T0), read(T0 + H, "ib"), read(T0 + 2 * H, "ib")], MetricsConfig(institution="ib")
    )
    assert scoped.find(ACCESS)[0].total == 2.0


def test_days_and_weeks() -> None:
    monday = 1_780_012_800_000  # 2026-05-29 is a Friday; pick the data, check the keys
    report = compute_metrics(
        [
            referral(monday, "referral.send", "r1", "ia"),
            referral(monday + H, "referral.accept", "r1", "ib"),
            referral(monday + 3 * D, "referral.send", "r2", "ia"),
            referral(monday + 3 * D + 2 * H, "referral.accept", "r2", "ib"),
        ]
    )
    days = report.find(DECISION, "day")
    weeks = report.find(DECISION, "week")
    assert [r.count for r in days] == [1, 1]
    assert sum(r.count for r in weeks) == 2
    assert all(w.start is not None and w.start.weekday() == 0 for w in weeks)


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=2, max_size=200))
def test_percentiles_match_the_standard_library(values: list[float]) -> None:
    ordered = sorted(values)
    q = statistics.quantiles(values, n=100, method="inclusive")
    for p in (50, 90, 99):
        assert math.isclose(percentile(ordered, p), q[p - 1], rel_tol=1e-9, abs_tol=1e-9)


def test_percentile_edges() -> None:
    assert math.isnan(percentile([], 50))
    assert percentile([4.0], 99) == 4.0
