"""A synthetic pilot workload: realistic days of referrals, messages, record access,
expert summons and break-glass, as the ledger would record them.

:func:`generate` simulates a rollout (phase 1's specialist alliances, then phase 2's
hospitals, then phase 3's private clinics, over the days asked) from a seed, and yields
the audit events the services write, in time order, each with its timestamp:

- a referral: its consultation group created, ``SendReferral`` (facts from the referral
  service's own :func:`~app.referrals.service.referral_facts`), sometimes a redirect,
  then accept (85 %), decline (10 %), cancel (3 %) or nothing (2 %), views of it, and
  completion; decision times are log-normal with a median that falls from 4.2 h in
  phase 1 towards 1.1 h in phase 3 (shorter for emergencies);
- a conversation in the group between the referring and the receiving department, in
  turns (``message.send`` events of the shape app/audit/facts.py defines for messaging);
- record reads by both sides over the following days (more per episode as the rollout
  goes on); a one-click summon in a third of the groups, mostly answered by a join;
- break-glass starts (and a few refused attempts) by emergency doctors.

:func:`ledger_entries` turns the events into ledger entries through the ledger's own
mapping (:func:`app.ledger.trail.entry_for`), numbered from 0: what an export of the
ledger would hold. With a :class:`Truth` the generator also records what it decided
(each referral's send and decision time, each message request and its response, reads
per patient, each summon and its join), so tests can compare the metrics computed from
the entries with an independent count.

Memory stays bounded by the events in flight (a few days' worth), so 10^6 entries
stream. All data is synthetic: registration numbers ``ZZ`` + digits, patient ids
``pt-synthetic-...``, institutions the stage files' fictional ones.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from app.audit.events import AuditEvent, Outcome, patient_reference
from app.audit.facts import Operation, Urgency, department_code
from app.ledger.entries import AuditEntry
from app.ledger.trail import entry_for
from app.referrals.lifecycle import (
    DeclineReason,
    LegalBasis,
    PatientNotice,
    Referral,
    ReferralStatus,
    Target,
)
from app.referrals.service import referral_facts

HASH_KEY = b"synthetic-workload-audit-hash-key-0123456789"
COHORTS: dict[int, tuple[str, ...]] = {
    1: ("harbour-cardiac-alliance", "lion-rock-oncology"),
    2: ("victoria-general", "new-territories-east-cluster"),
    3: ("peak-family-clinic", "sai-kung-medical-centre"),
}
SPECIALTIES: dict[str, tuple[str, ...]] = {
    "harbour-cardiac-alliance": ("cardiology",),
    "lion-rock-oncology": ("clinical oncology",),
    "victoria-general": ("emergency medicine", "general surgery", "cardiology"),
    "new-territories-east-cluster": ("emergency medicine", "general surgery", "clinical oncology"),
    "peak-family-clinic": ("family medicine",),
    "sai-kung-medical-centre": ("family medicine", "general surgery"),
}
# Median decision time (hours) by phase: the seed's 4.2 h before, 1.1 h after.
DECISION_MEDIAN_HOURS = {1: 4.2, 2: 2.2, 3: 1.1}
URGENCY_FACTOR = {Urgency.EMERGENCY: 0.25, Urgency.URGENT: 0.7, Urgency.ROUTINE: 1.6}
READS_PER_EPISODE = {1: 3.0, 2: 4.0, 3: 5.0}
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Doctor:
    sub: str
    reg_no: str
    institution: str
    specialty: str

    @property
    def specialties(self) -> tuple[str, ...]:
        return (self.specialty,)


@dataclass
class Truth:
    """What the generator decided, for tests to count independently."""

    referrals: list[dict[str, object]] = field(default_factory=list)
    requests: list[dict[str, object]] = field(default_factory=list)
    reads: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    summons: list[dict[str, object]] = field(default_factory=list)
    break_glass: list[tuple[int, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class WorkloadConfig:
    days: int = 30
    start: date = date(2026, 3, 2)
    seed: int = 14
    referrals_per_day: int = 40
    phases: tuple[int, ...] = (1, 2, 3)


def _phase_of_day(config: WorkloadConfig, day: int) -> int:
    per = max(1, math.ceil(config.days / len(config.phases)))
    return config.phases[min(day // per, len(config.phases) - 1)]


class _Roster:
    def __init__(self, rng: random.Random):
        self.doctors: dict[str, list[Doctor]] = {}
        n = itertools.count(10000)
        for institution, specialties in SPECIALTIES.items():
            self.doctors[institution] = [
                Doctor(
                    str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    f"ZZ{next(n)}",
                    institution,
                    sp,
                )
                for sp in specialties
                for _ in range(6)
            ]

    def admitted(self, phase: int) -> list[str]:
        return [i for p in range(1, phase + 1) for i in COHORTS[p]]

    def pick(self, rng: random.Random, institution: str, specialty: str | None = None) -> Doctor:
        pool = [d for d in self.doctors[institution] if specialty in (None, d.specialty)]
        return rng.choice(pool)


def _event(
    doctor: Doctor,
    action: str,
    resource: str,
    at_ms: int,
    *,
    patient_ref: str | None = None,
    reason: str = "synthetic-policy",
    outcome: Outcome = Outcome.ALLOW,
    facts: dict[str, str] | None = None,
) -> AuditEvent:
    return AuditEvent(
        action=action,
        outcome=outcome,
        reason=reason,
        actor=doctor.sub,
        actor_reg_no=doctor.reg_no,
        institution=doctor.institution,
        resource=resource,
        patient_ref=patient_ref,
        actor_roles=("doctor", "specialist"),
        facts=facts or {},
        at=datetime.fromtimestamp(at_ms / 1000, UTC),
    )


def _lognormal_ms(rng: random.Random, median_ms: float, sigma: float = 0.6) -> int:
    return max(MINUTE_MS // 6, int(rng.lognormvariate(math.log(median_ms), sigma)))


def generate(config: WorkloadConfig, truth: Truth | None = None) -> Iterator[AuditEvent]:
    """The workload's audit events in time order (each event's ``at`` is its time)."""
    rng = random.Random(config.seed)  # noqa: S311 (synthetic data, reproducible by seed)
    roster = _Roster(rng)
    heap: list[tuple[int, int, AuditEvent]] = []
    order = itertools.count()
    start_ms = int(
        datetime(config.start.year, config.start.month, config.start.day, tzinfo=UTC).timestamp()
        * 1000
    )

    def push(event: AuditEvent) -> None:
        heapq.heappush(heap, (int(event.at.timestamp() * 1000), next(order), event))

    for day in range(config.days):
        phase = _phase_of_day(config, day)
        admitted = roster.admitted(phase)
        day_ms = start_ms + day * DAY_MS
        for _ in range(
            rng.randint(config.referrals_per_day * 3 // 4, config.referrals_per_day * 5 // 4)
        ):
            _referral(
                rng,
                roster,
                admitted,
                phase,
                day_ms + rng.randint(7 * HOUR_MS, 21 * HOUR_MS),
                push,
                truth,
            )
        for _ in range(rng.randint(0, 2)):
            _break_glass(rng, roster, admitted, day_ms + rng.randint(0, DAY_MS - 1), push, truth)
        # Everything before the next day is final: nothing generated later is earlier.
        while heap and heap[0][0] < day_ms + DAY_MS:
            yield heapq.heappop(heap)[2]
    while heap:
        yield heapq.heappop(heap)[2]


def _referral(rng, roster, admitted, phase, sent_ms, push, truth) -> None:  # type: ignore[no-untyped-def]
    source_inst = rng.choice(admitted)
    referrer = roster.pick(rng, source_inst)
    target_inst = rng.choice(admitted)
    specialties = [
        s for s in SPECIALTIES[target_inst] if (target_inst, s) != (source_inst, referrer.specialty)
    ]
    if not specialties:
        target_inst = rng.choice([i for i in admitted if i != source_inst] or admitted)
        specialties = [
            s
            for s in SPECIALTIES[target_inst]
            if (target_inst, s) != (source_inst, referrer.specialty)
        ]
    specialty = rng.choice(specialties)
    urgency = rng.choices(list(Urgency), weights=(15, 35, 50))[0]
    patient_id = f"pt-synthetic-{rng.getrandbits(48):012x}"
    ref = patient_reference(patient_id, HASH_KEY)
    group_id = f"{rng.getrandbits(128):032x}"
    rid = f"{rng.getrandbits(128):032x}"
    basis = LegalBasis.EMERGENCY if urgency is Urgency.EMERGENCY else LegalBasis.REFERRAL_FOR_CARE
    referral = Referral(
        referral_id=rid,
        patient_id=patient_id,
        patient_ref=ref,
        group_id=group_id,
        referrer=referrer.reg_no,
        from_institution=source_inst,
        from_department=department_code(referrer.specialties),
        urgency=urgency,
        legal_basis=basis,
        patient_notice=PatientNotice.NONE
        if basis is LegalBasis.EMERGENCY
        else PatientNotice.INFORMED,
        target=Target(target_inst, specialty),
        to_department=department_code([specialty]),
        status=ReferralStatus.REQUESTED,
        created_at=datetime.fromtimestamp(sent_ms / 1000, UTC),
        phase=phase,
    )
    push(
        _event(
            referrer, "CreateGroup", f"Group::{group_id}", sent_ms - 2 * MINUTE_MS, patient_ref=ref
        )
    )
    push(
        _event(
            referrer,
            "SendReferral",
            f"Referral::{rid}",
            sent_ms,
            patient_ref=ref,
            facts=referral_facts(referral, Operation.REFERRAL_SEND, referrer.specialties),
        )
    )
    receiver = roster.pick(rng, target_inst, specialty)
    median = DECISION_MEDIAN_HOURS[phase] * URGENCY_FACTOR[urgency] * HOUR_MS
    decided_ms = sent_ms + _lognormal_ms(rng, median)
    push(
        _event(
            receiver,
            "ViewReferral",
            f"Referral::{rid}",
            sent_ms + (decided_ms - sent_ms) // 2,
            patient_ref=ref,
        )
    )
    if rng.random() < 0.10:
        redirect_ms = sent_ms + (decided_ms - sent_ms) // 3
        push(
            _event(
                receiver,
                "RedirectReferral",
                f"Referral::{rid}",
                redirect_ms,
                patient_ref=ref,
                facts=referral_facts(referral, Operation.REFERRAL_REDIRECT, receiver.specialties),
            )
        )
    fate = rng.choices(("accept", "decline", "cancel", "none"), weights=(85, 10, 3, 2))[0]
    record = {
        "sent_ms": sent_ms,
        "urgency": urgency.value,
        "from": source_inst,
        "to": target_inst,
        "phase": phase,
        "outcome": fate,
        "decided_ms": None,
    }
    if truth is not None:
        truth.referrals.append(record)
    if fate == "cancel":
        push(
            _event(
                referrer,
                "CancelReferral",
                f"Referral::{rid}",
                decided_ms,
                patient_ref=ref,
                facts=referral_facts(referral, Operation.REFERRAL_CANCEL, referrer.specialties),
            )
        )
        return
    if fate == "none":
        return
    record["decided_ms"] = decided_ms
    if fate == "decline":
        declined = Referral(**{**referral.__dict__, "decline_reason": DeclineReason.NO_CAPACITY})
        push(
            _event(
                receiver,
                "DeclineReferral",
                f"Referral::{rid}",
                decided_ms,
                patient_ref=ref,
                facts=referral_facts(declined, Operation.REFERRAL_DECLINE, receiver.specialties),
            )
        )
        return
    push(
        _event(
            receiver,
            "AcceptReferral",
            f"Referral::{rid}",
            decided_ms,
            patient_ref=ref,
            facts=referral_facts(referral, Operation.REFERRAL_ACCEPT, receiver.specialties),
        )
    )
    _conversation(rng, referrer, receiver, group_id, ref, phase, decided_ms, push, truth)
    _reads(rng, roster, referrer, receiver, ref, phase, decided_ms, push, truth)
    if rng.random() < 0.33:
        _summon(
            rng, roster, admitted, referrer, group_id, ref, decided_ms + 10 * MINUTE_MS, push, truth
        )
    if rng.random() < 0.7:
        push(
            _event(
                receiver,
                "CompleteReferral",
                f"Referral::{rid}",
                decided_ms + 3 * DAY_MS,
                patient_ref=ref,
                facts=referral_facts(referral, Operation.REFERRAL_COMPLETE, receiver.specialties),
            )
        )


def _message(doctor: Doctor, group_id: str, ref: str, phase: int, at_ms: int) -> AuditEvent:
    return _event(
        doctor,
        "SendMessage",
        f"Message::{at_ms:x}-{doctor.reg_no}",
        at_ms,
        patient_ref=ref,
        facts={
            "op": Operation.MESSAGE_SEND.value,
            "group": group_id,
            "department": department_code(doctor.specialties),
            "phase": str(phase),
        },
    )


def _conversation(rng, referrer, receiver, group_id, ref, phase, at_ms, push, truth) -> None:  # type: ignore[no-untyped-def]
    sides = (referrer, receiver)
    turns = rng.randint(2, 6)
    t = at_ms + rng.randint(1, 30) * MINUTE_MS
    for turn in range(turns):
        who = sides[turn % 2]
        request_ms = t
        for _ in range(rng.choice((1, 1, 2))):
            push(_message(who, group_id, ref, phase, t))
            t += rng.randint(1, 4) * MINUTE_MS
        answered = turn + 1 < turns
        reply_ms = t - MINUTE_MS + _lognormal_ms(rng, 22 * MINUTE_MS, 0.9) if answered else None
        if truth is not None:
            truth.requests.append(
                {
                    "at_ms": request_ms,
                    "institution": who.institution,
                    "phase": phase,
                    "reply_ms": reply_ms,
                }
            )
        if reply_ms is not None:
            t = reply_ms


def _reads(rng, roster, referrer, receiver, ref, phase, at_ms, push, truth) -> None:  # type: ignore[no-untyped-def]
    count = max(0, int(rng.gauss(READS_PER_EPISODE[phase], 1.2)))
    for _ in range(count):
        reader = rng.choice((referrer, receiver, receiver))
        ms = at_ms + rng.randint(1, 6 * 24 * 60) * MINUTE_MS
        push(
            _event(
                reader,
                "ReadRecord",
                f"RecordVersion::{rng.getrandbits(64):016x}:1",
                ms,
                patient_ref=ref,
            )
        )
        if truth is not None:
            truth.reads.setdefault(ref, []).append((ms, reader.institution))


def _summon(rng, roster, admitted, referrer, group_id, ref, at_ms, push, truth) -> None:  # type: ignore[no-untyped-def]
    push(_event(referrer, "SummonExperts", f"Group::{group_id}", at_ms, patient_ref=ref))
    joined_ms = None
    if rng.random() < 0.85:
        expert = roster.pick(rng, rng.choice(admitted))
        joined_ms = at_ms + _lognormal_ms(rng, 25 * MINUTE_MS)
        push(_event(expert, "AcceptInvitation", f"Group::{group_id}", joined_ms, patient_ref=ref))
    if truth is not None:
        truth.summons.append(
            {"at_ms": at_ms, "institution": referrer.institution, "joined_ms": joined_ms}
        )


def _break_glass(rng, roster, admitted, at_ms, push, truth) -> None:  # type: ignore[no-untyped-def]
    doctor = roster.pick(rng, rng.choice(admitted))
    ref = patient_reference(f"pt-synthetic-bg-{rng.getrandbits(32):08x}", HASH_KEY)
    denied = rng.random() < 0.1
    push(
        _event(
            doctor,
            "StartBreakGlass",
            f"Patient::{ref}",
            at_ms,
            patient_ref=ref,
            outcome=Outcome.DENY if denied else Outcome.ALLOW,
        )
    )
    if truth is not None:
        truth.break_glass.append((at_ms, doctor.institution, "denied" if denied else "success"))


def ledger_entries(events: Iterator[AuditEvent], first_sequence: int = 0) -> Iterator[AuditEntry]:
    """The ledger entries for ``events``, numbered from ``first_sequence``."""
    for seq, event in enumerate(events, start=first_sequence):
        yield entry_for(event, seq, f"req-{seq:x}")
