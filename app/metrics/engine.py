"""The pilot metrics, computed in one streaming pass over ledger entries.

Input: ledger entries (:class:`~app.ledger.entries.AuditEntry`) in log order, as read
from the ledger (sequence order is commit order, so a reply is never before the message
it answers). Nothing else is read: no mutable table, so every figure can be recomputed
by anyone holding the export and checked against the signed tree heads. Only
``success`` entries count, except break-glass refusals, which are counted as such.

Metrics (definitions in docs/referrals.md "Metrics"):

- ``referral_decision_hours``: from ``referral.send`` to the first ``referral.accept`` or
  ``referral.decline`` of that referral (redirects in between count in the time), by
  urgency, institution pair (sender's institution -> decider's) and phase (the rollout
  phase stated at send); a referral cancelled or still undecided at the end of the
  input is counted (``cancelled``, ``undecided``), never given a time;
- ``message_response_minutes`` and ``message_response_rate``: in each group, a request
  is the first message of a turn (a message whose sender's department, institution and
  department, differs from the previous message's); its response is the next message
  from another department; the rate is the share of requests answered within the window
  (default 60 minutes), by the requester's institution and phase;
- ``record_accesses_per_episode``: a patient episode is a run of ledger activity naming
  the patient with no gap longer than ``episode_gap`` (default 14 days); the value is
  the number of successful record reads in it (metadata views and content opens);
- ``summon_to_join_minutes``: from a one-click summon in a group to the first join of
  that group after it by a doctor who was not individually invited since the summon;
- ``break_glass_uses``: successful break-glass starts (and refused attempts).

Each sample is dated by its starting event (the send, the request, the episode's first
activity, the summon) and rolled up per day and per ISO week (Monday) and over the
whole input, as count, mean and the 50th/90th/99th percentiles (linear interpolation
between closest ranks, as numpy's default and ``statistics.quantiles(method=
"inclusive")``).

With ``institution`` set, only samples that involve it count: referrals it sent or
decided, requests its clinicians sent, reads by its clinicians (in episodes where it
read), its summons and its clinicians' break-glass use.

Complexity: one pass, O(1) work per entry (dictionary updates), so O(N) time for N
entries plus O(S log S) to sort the S samples at the end; memory O(S + P + G + R): the
samples (two machine words each), one small record per patient with an open episode
(P), per group with an open request or summon (G), and per referral awaiting its
decision (R); never the entries themselves.
"""

from __future__ import annotations

import math
from array import array
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from app.audit.facts import Operation
from app.ledger.entries import Action, AuditEntry, Outcome, ResourceType

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
EPOCH = date(1970, 1, 1)
PERCENTILES = (50, 90, 99)

DECISION = "referral_decision_hours"
RESPONSE = "message_response_minutes"
RESPONSE_RATE = "message_response_rate"
ACCESS = "record_accesses_per_episode"
SUMMON = "summon_to_join_minutes"
BREAK_GLASS = "break_glass_uses"
METRICS = (DECISION, RESPONSE, RESPONSE_RATE, ACCESS, SUMMON, BREAK_GLASS)

# Which breakdowns each metric is rolled up by (besides "all").
GROUPINGS: dict[str, tuple[tuple[str, ...], ...]] = {
    DECISION: (
        (),
        ("urgency",),
        ("phase",),
        ("phase", "urgency"),
        ("from_institution", "to_institution"),
        ("outcome",),
    ),
    RESPONSE: ((), ("institution",), ("phase",)),
    RESPONSE_RATE: ((), ("institution",), ("phase",)),
    ACCESS: ((), ("institution",)),
    SUMMON: ((), ("institution",)),
    BREAK_GLASS: ((), ("institution",), ("outcome",)),
}
DIMENSIONS: dict[str, tuple[str, ...]] = {
    DECISION: ("urgency", "from_institution", "to_institution", "phase", "outcome"),
    RESPONSE: ("institution", "phase"),
    RESPONSE_RATE: ("institution", "phase"),
    ACCESS: ("institution",),
    SUMMON: ("institution",),
    BREAK_GLASS: ("institution", "outcome"),
}


@dataclass(frozen=True)
class MetricsConfig:
    response_window_ms: int = HOUR_MS
    episode_gap_ms: int = 14 * DAY_MS
    institution: str | None = None


@dataclass(frozen=True)
class SeriesRow:
    """One rolled-up value: a metric, a period (``day``/``week``/``all``) starting at
    ``start`` (None for ``all``), the breakdown it is for, and its statistics."""

    metric: str
    period: str
    start: date | None
    breakdown: tuple[tuple[str, str], ...]
    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    total: float

    def as_dict(self) -> dict[str, object]:
        return {
            "metric": self.metric,
            "period": self.period,
            "start": self.start.isoformat() if self.start else None,
            "breakdown": dict(self.breakdown),
            "count": self.count,
            "mean": self.mean,
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "total": self.total,
        }


@dataclass
class MetricsReport:
    rows: list[SeriesRow]
    counters: dict[str, int]
    entries: int
    first_ms: int | None
    last_ms: int | None

    def find(self, metric: str, period: str = "all", **breakdown: str) -> list[SeriesRow]:
        wanted = tuple(sorted(breakdown.items()))
        return [
            r
            for r in self.rows
            if r.metric == metric and r.period == period and r.breakdown == wanted
        ]


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of sorted values, interpolating linearly between ranks."""
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class _Samples:
    """Values with the day each is dated by, per full dimension key (compact arrays)."""

    def __init__(self) -> None:
        self.days: dict[tuple[str, ...], array[int]] = defaultdict(lambda: array("i"))
        self.values: dict[tuple[str, ...], array[float]] = defaultdict(lambda: array("d"))

    def add(self, key: tuple[str, ...], day: int, value: float) -> None:
        self.days[key].append(day)
        self.values[key].append(value)

    def __len__(self) -> int:
        return sum(len(v) for v in self.values.values())


@dataclass
class _Pending:
    sent_ms: int
    urgency: str
    from_institution: str
    phase: str


@dataclass
class _Request:
    at_ms: int
    department: tuple[str, str]
    phase: str


@dataclass
class _Episode:
    start_ms: int
    last_ms: int
    reads: dict[str, int] = field(default_factory=dict)
    involved: set[str] = field(default_factory=set)


@dataclass
class _Summon:
    at_ms: int
    institution: str
    answered: bool = False


class MetricsAccumulator:
    """Feed entries in log order with :meth:`add`; :meth:`finish` rolls everything up."""

    def __init__(self, config: MetricsConfig | None = None):
        self.config = config or MetricsConfig()
        self._samples: dict[str, _Samples] = {m: _Samples() for m in METRICS}
        self._pending: dict[str, _Pending] = {}
        self._requests: dict[str, _Request] = {}
        self._episodes: dict[str, _Episode] = {}
        self._summons: dict[str, _Summon] = {}
        self._invited_since: dict[tuple[str, str], int] = {}
        self.counters: dict[str, int] = defaultdict(int)
        self.entries = 0
        self.first_ms: int | None = None
        self.last_ms: int | None = None

    # -- helpers ------------------------------------------------------------------------

    def _in_scope(self, *institutions: str) -> bool:
        scope = self.config.institution
        return scope is None or scope in institutions

    @staticmethod
    def _day(ms: int) -> int:
        return ms // DAY_MS

    # -- the pass -----------------------------------------------------------------------

    def add(self, entry: AuditEntry) -> None:
        self.entries += 1
        ts = entry.timestamp_ms
        if self.first_ms is None:
            self.first_ms = ts
        self.last_ms = ts
        institution = entry.actor.institution_id or ""
        if entry.action is Action.BREAK_GLASS:
            outcome = "success" if entry.outcome is Outcome.SUCCESS else "denied"
            if self._in_scope(institution):
                self._samples[BREAK_GLASS].add((institution, outcome), self._day(ts), 1.0)
        if entry.outcome is not Outcome.SUCCESS:
            return
        op = entry.facts.get("op")
        if op is not None:
            if op == Operation.MESSAGE_SEND:
                self._message(entry, ts, institution)
            elif op.startswith("referral."):
                self._referral(entry, op, ts, institution)
        kind = entry.resource.type
        if kind is ResourceType.GROUP and entry.action is Action.SHARE:
            self._summons[entry.resource.id] = _Summon(ts, institution)
        elif kind is ResourceType.MEMBERSHIP and entry.action is Action.SHARE:
            group, _, reg_no = entry.resource.id.partition(":")
            self._invited_since[(group, reg_no)] = ts
        elif kind is ResourceType.GROUP and entry.action is Action.JOIN:
            self._join(entry.resource.id, entry.actor.mchk_reg_no or "", ts)
        if entry.resource.patient_ref is not None:
            self._patient(entry, entry.resource.patient_ref, ts, institution)

    def _referral(self, entry: AuditEntry, op: str, ts: int, institution: str) -> None:
        rid = entry.resource.id
        facts = entry.facts
        if op == Operation.REFERRAL_SEND:
            self._pending[rid] = _Pending(
                ts, facts.get("urgency", ""), institution, facts.get("phase", "")
            )
            self.counters["referrals_sent"] += 1
            return
        sent = self._pending.get(rid)
        if sent is None:
            return  # sent before the input began: no decision time to give
        if op in (Operation.REFERRAL_ACCEPT, Operation.REFERRAL_DECLINE):
            del self._pending[rid]
            outcome = "accepted" if op == Operation.REFERRAL_ACCEPT else "declined"
            if self._in_scope(sent.from_institution, institution):
                key = (sent.urgency, sent.from_institution, institution, sent.phase, outcome)
                self._samples[DECISION].add(
                    key, self._day(sent.sent_ms), max(0, ts - sent.sent_ms) / HOUR_MS
                )
                self.counters[f"referrals_{outcome}"] += 1
        elif op == Operation.REFERRAL_CANCEL:
            del self._pending[rid]
            if self._in_scope(sent.from_institution):
                self.counters["referrals_cancelled"] += 1
        elif op == Operation.REFERRAL_REDIRECT:
            self.counters["referrals_redirected"] += 1

    def _message(self, entry: AuditEntry, ts: int, institution: str) -> None:
        group = entry.facts.get("group", "")
        department = (institution, entry.facts.get("department", "general"))
        phase = entry.facts.get("phase", "")
        open_request = self._requests.get(group)
        if open_request is not None and open_request.department == department:
            return  # the same department's turn goes on
        if open_request is not None:
            self._answered(open_request, ts - open_request.at_ms)
        self._requests[group] = _Request(ts, department, phase)

    def _answered(self, request: _Request, waited_ms: int | None) -> None:
        requester = request.department[0]
        if not self._in_scope(requester):
            return
        day = self._day(request.at_ms)
        key = (requester, request.phase)
        within = waited_ms is not None and waited_ms <= self.config.response_window_ms
        self._samples[RESPONSE_RATE].add(key, day, 1.0 if within else 0.0)
        if waited_ms is not None:
            self._samples[RESPONSE].add(key, day, max(0, waited_ms) / MINUTE_MS)

    def _join(self, group: str, reg_no: str, ts: int) -> None:
        summon = self._summons.get(group)
        if summon is None or summon.answered:
            return
        if self._invited_since.get((group, reg_no), -1) >= summon.at_ms:
            return  # invited individually after the summon: not the summon's doing
        summon.answered = True
        if self._in_scope(summon.institution):
            self._samples[SUMMON].add(
                (summon.institution,), self._day(summon.at_ms), (ts - summon.at_ms) / MINUTE_MS
            )

    def _patient(self, entry: AuditEntry, ref: str, ts: int, institution: str) -> None:
        episode = self._episodes.get(ref)
        if episode is not None and ts - episode.last_ms > self.config.episode_gap_ms:
            self._close(episode)
            episode = None
        if episode is None:
            episode = self._episodes[ref] = _Episode(ts, ts)
        episode.last_ms = ts
        if institution:
            episode.involved.add(institution)
        if entry.resource.type is ResourceType.RECORD and entry.action is Action.READ:
            episode.reads[institution] = episode.reads.get(institution, 0) + 1

    def _close(self, episode: _Episode) -> None:
        day = self._day(episode.start_ms)
        scope = self.config.institution
        if scope is None:
            self._samples[ACCESS].add(("",), day, float(sum(episode.reads.values())))
            for institution in episode.involved:
                self._samples[ACCESS].add(
                    (institution,), day, float(episode.reads.get(institution, 0))
                )
        elif scope in episode.involved:
            count = float(episode.reads.get(scope, 0))
            self._samples[ACCESS].add(("",), day, count)
            self._samples[ACCESS].add((scope,), day, count)

    # -- the roll-up --------------------------------------------------------------------

    def finish(self) -> MetricsReport:
        """Close open episodes and requests, count what is undecided, roll up."""
        for episode in self._episodes.values():
            self._close(episode)
        self._episodes.clear()
        for request in self._requests.values():
            self._answered(request, None)
        self._requests.clear()
        for sent in self._pending.values():
            if self._in_scope(sent.from_institution):
                self.counters["referrals_undecided"] += 1
        for summon in self._summons.values():
            if not summon.answered and self._in_scope(summon.institution):
                self.counters["summons_unanswered"] += 1
        rows: list[SeriesRow] = []
        for metric in METRICS:
            rows.extend(self._roll_up(metric))
        return MetricsReport(rows, dict(self.counters), self.entries, self.first_ms, self.last_ms)

    def _roll_up(self, metric: str) -> Iterator[SeriesRow]:
        samples = self._samples[metric]
        names = DIMENSIONS[metric]
        for grouping in GROUPINGS[metric]:
            keys: list[tuple[str, ...]] = list(samples.values)
            if metric == ACCESS:
                overall = not grouping
                keys = [k for k in keys if (k == ("",)) == overall]
            buckets: dict[tuple[str, date | None, tuple[tuple[str, str], ...]], list[float]] = (
                defaultdict(list)
            )
            for key in keys:
                breakdown = tuple(sorted((n, key[names.index(n)]) for n in grouping))
                stored = samples.values[key]
                buckets[("all", None, breakdown)].extend(stored)
                for value, day in zip(stored, samples.days[key], strict=True):
                    start = EPOCH + timedelta(days=day)
                    buckets[("day", start, breakdown)].append(value)
                    monday = start - timedelta(days=start.weekday())
                    buckets[("week", monday, breakdown)].append(value)
            for (period, begins, breakdown), values in sorted(
                buckets.items(), key=lambda kv: (kv[0][0], kv[0][1] or EPOCH, kv[0][2])
            ):
                values.sort()
                total = math.fsum(values)
                yield SeriesRow(
                    metric,
                    period,
                    begins,
                    breakdown,
                    len(values),
                    total / len(values),
                    percentile(values, 50),
                    percentile(values, 90),
                    percentile(values, 99),
                    total,
                )


def compute_metrics(
    entries: Iterable[AuditEntry], config: MetricsConfig | None = None
) -> MetricsReport:
    """All metrics over ``entries`` (in log order), in one pass."""
    accumulator = MetricsAccumulator(config)
    for entry in entries:
        accumulator.add(entry)
    return accumulator.finish()


def day_of(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, UTC).date()
