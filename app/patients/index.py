"""The patient index core: one patient across institutions, by keyed references only.

A patient is known to the hub by an opaque ``patient_id`` and reached through either
identifier a source carries:

- the HKID, kept only as ``hkid_ref = "hk1-" + HMAC-SHA256(key, context || HKID)``;
- an institution's MRN, kept only as ``mrn_ref = "mr1-" + HMAC-SHA256(key, context ||
  institution || 0x00 || MRN)`` and *linked* to a patient.

The key is at least 32 secret bytes handed in by the caller (a later step loads it from
KMS the way :mod:`app.audit.hash_key` does for audit references); the contexts separate
the two uses, so an HKID reference can never equal an MRN reference. The HKID and the MRN
in clear are never stored, never part of an event, never in ``repr``.

Pure code: no storage, no clock. The state is a fold over an append-only event log::

    PATIENT_REGISTERED   a new patient_id, with its hkid_ref when known
    MRN_LINKED           (institution, mrn_ref) -> patient_id            ACTIVE
    MRN_UNLINKED         an ACTIVE link ends                              -> UNLINKED
    MRN_LINK_CORRECTED   an ACTIVE link was to the wrong patient:
                         it becomes SUPERSEDED and a new ACTIVE link to the right
                         patient starts; the event names both and what it supersedes
    HKID_CORRECTED       a patient's hkid_ref was wrong: the new one replaces it for
                         lookups; the event keeps the previous one

Every change is an :class:`IndexEvent` with its sequence number, time, actor and coded
reason. Nothing is deleted or rewritten: a correction supersedes, the superseded link keeps
its times, and :func:`as_of` rebuilds the index as it stood after any event. Operations
check their preconditions first and raise :class:`IndexConflict` (a 409) with a fixed code,
changing nothing. :func:`match_subject` tells a caller filing a record whether its
identifiers meet one patient, none, or disagree.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from app.errors import Conflict, InvalidRequest
from app.patients.hkid import Hkid

MIN_KEY_BYTES = 32
_HKID_CONTEXT = b"hub-patient-index/hkid/v1\x00"
_MRN_CONTEXT = b"hub-patient-index/mrn/v1\x00"


def hkid_reference(hkid: Hkid, key: bytes) -> str:
    """The index's keyed reference for an HKID (validated, canonical form)."""
    return "hk1-" + _mac(key, _HKID_CONTEXT + hkid.value.encode("ascii"))


def mrn_reference(institution: str, mrn: str, key: bytes) -> str:
    """The index's keyed reference for an institution's medical record number.

    Raises:
        ValueError: an empty institution or MRN, or one containing NUL (the separator).
    """
    if not institution or not mrn or "\x00" in institution or "\x00" in mrn:
        raise ValueError("institution and MRN must be non-empty and free of NUL")
    message = _MRN_CONTEXT + institution.encode("utf-8") + b"\x00" + mrn.encode("utf-8")
    return "mr1-" + _mac(key, message)


def _mac(key: bytes, message: bytes) -> str:
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the index key must be at least {MIN_KEY_BYTES} bytes")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class IndexConflict(Conflict):
    """The change contradicts the index as it stands (409; ``code`` says which rule)."""

    def __init__(self, code: str, message: str):
        super().__init__(message, code=code)


class UnknownPatient(InvalidRequest):
    """A request names a patient the index does not know (422): register them first."""

    code = "unknown_patient"

    def __init__(self) -> None:
        super().__init__(
            "The patient is not in the patient index; register them first (POST /patients)."
        )


class PatientRegistry(Protocol):
    """What groups, records and referrals ask before acting for a patient."""

    def is_registered(self, patient_id: str) -> bool: ...


class EventKind(StrEnum):
    PATIENT_REGISTERED = "patient_registered"
    MRN_LINKED = "mrn_linked"
    MRN_UNLINKED = "mrn_unlinked"
    MRN_LINK_CORRECTED = "mrn_link_corrected"
    HKID_CORRECTED = "hkid_corrected"


class ChangeReason(StrEnum):
    """Why an index change was made (coded: free text could carry patient data)."""

    REGISTRATION = "registration"
    RECORD_FILED = "record_filed"
    INSTITUTION_REQUEST = "institution_request"
    WRONG_PATIENT = "wrong_patient"
    DATA_ENTRY_ERROR = "data_entry_error"
    DUPLICATE_RECORD = "duplicate_record"
    MRN_RETIRED = "mrn_retired"


class LinkState(StrEnum):
    ACTIVE = "active"
    UNLINKED = "unlinked"
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class IndexEvent:
    """One change to the index: references, ids and codes only."""

    seq: int
    kind: EventKind
    patient_id: str
    actor: str
    at: datetime
    reason: ChangeReason
    hkid_ref: str | None = None
    institution: str | None = None
    mrn_ref: str | None = None
    previous_patient_id: str | None = None  # MRN_LINK_CORRECTED: who the link wrongly named
    previous_hkid_ref: str | None = None  # HKID_CORRECTED: the reference it replaces
    supersedes: int | None = None  # MRN_LINK_CORRECTED: seq of the link event corrected


@dataclass(frozen=True)
class IndexedPatient:
    patient_id: str
    hkid_ref: str | None
    registered_at: datetime
    registered_by: str


@dataclass(frozen=True)
class MrnLink:
    """One period of an MRN pointing at a patient (history keeps every period)."""

    institution: str
    mrn_ref: str
    patient_id: str
    state: LinkState
    linked_seq: int
    linked_at: datetime
    linked_by: str
    ended_seq: int | None = None
    ended_at: datetime | None = None
    ended_by: str | None = None
    superseded_by: int | None = None


@dataclass(frozen=True)
class PatientIndex:
    """The index state after ``events`` (build with :func:`empty_index` / :func:`replay`)."""

    patients: Mapping[str, IndexedPatient] = field(default_factory=dict)
    hkids: Mapping[str, str] = field(default_factory=dict)  # hkid_ref -> patient_id
    links: tuple[MrnLink, ...] = ()  # every link period, in the order they began
    events: tuple[IndexEvent, ...] = ()

    @property
    def last_seq(self) -> int:
        return self.events[-1].seq if self.events else 0


def empty_index() -> PatientIndex:
    return PatientIndex()


# -- queries ---------------------------------------------------------------------------------


def resolve_hkid(index: PatientIndex, hkid_ref: str) -> str | None:
    """The patient an HKID reference names now, or None."""
    return index.hkids.get(hkid_ref)


def active_link(index: PatientIndex, institution: str, mrn_ref: str) -> MrnLink | None:
    return next(
        (
            link
            for link in reversed(index.links)
            if link.state is LinkState.ACTIVE
            and link.institution == institution
            and link.mrn_ref == mrn_ref
        ),
        None,
    )


def resolve_mrn(index: PatientIndex, institution: str, mrn_ref: str) -> str | None:
    """The patient an institution's MRN reference is linked to now, or None."""
    link = active_link(index, institution, mrn_ref)
    return link.patient_id if link else None


def links_of(index: PatientIndex, patient_id: str) -> tuple[MrnLink, ...]:
    """The patient's ACTIVE MRN links."""
    return tuple(
        link
        for link in index.links
        if link.patient_id == patient_id and link.state is LinkState.ACTIVE
    )


def history_of(index: PatientIndex, patient_id: str) -> tuple[IndexEvent, ...]:
    """Every event that concerned the patient, including links corrected away from them."""
    return tuple(e for e in index.events if patient_id in (e.patient_id, e.previous_patient_id))


def as_of(index: PatientIndex, seq: int) -> PatientIndex:
    """The index as it stood right after event ``seq`` (0: empty)."""
    return replay(e for e in index.events if e.seq <= seq)


class MatchOutcome(StrEnum):
    MATCHED = "matched"  # the identifiers lead to one patient, and agree
    LINKABLE = "linkable"  # the HKID names a patient; this MRN is not linked yet
    UNKNOWN = "unknown"  # nothing known: register (or refuse, per the caller's path)
    MISMATCH = "mismatch"  # the MRN and the HKID name different patients


@dataclass(frozen=True)
class SubjectMatch:
    outcome: MatchOutcome
    patient_id: str | None = None


def match_subject(
    index: PatientIndex, *, institution: str, mrn_ref: str | None, hkid_ref: str | None
) -> SubjectMatch:
    """Whether a record's identifiers (as keyed references) meet one patient.

    A MISMATCH is never resolved here: it is what :func:`correct_mrn_link` or
    :func:`correct_hkid` exist for, decided by a person with a reason.
    """
    by_mrn = resolve_mrn(index, institution, mrn_ref) if mrn_ref else None
    by_hkid = resolve_hkid(index, hkid_ref) if hkid_ref else None
    if by_mrn and by_hkid:
        same = by_mrn == by_hkid
        return SubjectMatch(MatchOutcome.MATCHED if same else MatchOutcome.MISMATCH, by_mrn)
    if by_mrn:
        recorded = index.patients[by_mrn].hkid_ref
        if hkid_ref and recorded and recorded != hkid_ref:
            return SubjectMatch(MatchOutcome.MISMATCH, by_mrn)
        return SubjectMatch(MatchOutcome.MATCHED, by_mrn)
    if by_hkid:
        if mrn_ref:
            return SubjectMatch(MatchOutcome.LINKABLE, by_hkid)
        return SubjectMatch(MatchOutcome.MATCHED, by_hkid)
    return SubjectMatch(MatchOutcome.UNKNOWN)


# -- operations: check, then append one event ---------------------------------------------------


def register_patient(
    index: PatientIndex,
    *,
    patient_id: str,
    hkid_ref: str | None,
    actor: str,
    at: datetime,
    reason: ChangeReason = ChangeReason.REGISTRATION,
) -> tuple[PatientIndex, IndexEvent]:
    """Register a new patient, with their HKID reference when they have one.

    Raises:
        IndexConflict: ``patient_exists`` or ``hkid_already_registered``.
    """
    _check_actor(actor, at)
    if not patient_id:
        raise ValueError("patient_id must not be empty")
    if patient_id in index.patients:
        raise IndexConflict("patient_exists", "The patient is already registered.")
    if hkid_ref is not None and hkid_ref in index.hkids:
        raise IndexConflict(
            "hkid_already_registered", "A patient with this HKID is already registered."
        )
    return _commit(
        index,
        IndexEvent(
            seq=index.last_seq + 1,
            kind=EventKind.PATIENT_REGISTERED,
            patient_id=patient_id,
            actor=actor,
            at=at,
            reason=reason,
            hkid_ref=hkid_ref,
        ),
    )


def link_mrn(
    index: PatientIndex,
    *,
    patient_id: str,
    institution: str,
    mrn_ref: str,
    actor: str,
    at: datetime,
    reason: ChangeReason = ChangeReason.RECORD_FILED,
) -> tuple[PatientIndex, IndexEvent]:
    """Link an institution's MRN to a patient.

    Raises:
        IndexConflict: ``unknown_patient``; ``already_linked`` (to this patient);
            ``mrn_linked_to_another_patient`` (a mismatch: correct it instead).
    """
    _check_actor(actor, at)
    _known(index, patient_id)
    current = active_link(index, institution, mrn_ref)
    if current is not None:
        if current.patient_id == patient_id:
            raise IndexConflict("already_linked", "The MRN is already linked to this patient.")
        raise IndexConflict(
            "mrn_linked_to_another_patient",
            "The MRN is linked to another patient; correct the link with a reason instead.",
        )
    return _commit(
        index,
        IndexEvent(
            seq=index.last_seq + 1,
            kind=EventKind.MRN_LINKED,
            patient_id=patient_id,
            actor=actor,
            at=at,
            reason=reason,
            institution=institution,
            mrn_ref=mrn_ref,
        ),
    )


def unlink_mrn(
    index: PatientIndex,
    *,
    institution: str,
    mrn_ref: str,
    actor: str,
    at: datetime,
    reason: ChangeReason,
) -> tuple[PatientIndex, IndexEvent]:
    """End an MRN's active link (the link keeps its history as UNLINKED).

    Raises:
        IndexConflict: ``mrn_not_linked``.
    """
    _check_actor(actor, at)
    current = active_link(index, institution, mrn_ref)
    if current is None:
        raise IndexConflict("mrn_not_linked", "The MRN is not linked to a patient.")
    return _commit(
        index,
        IndexEvent(
            seq=index.last_seq + 1,
            kind=EventKind.MRN_UNLINKED,
            patient_id=current.patient_id,
            actor=actor,
            at=at,
            reason=reason,
            institution=institution,
            mrn_ref=mrn_ref,
            supersedes=current.linked_seq,
        ),
    )


def correct_mrn_link(
    index: PatientIndex,
    *,
    institution: str,
    mrn_ref: str,
    to_patient_id: str,
    actor: str,
    at: datetime,
    reason: ChangeReason,
) -> tuple[PatientIndex, IndexEvent]:
    """Move an MRN linked to the wrong patient to the right one, superseding the old link.

    Raises:
        IndexConflict: ``unknown_patient``, ``mrn_not_linked``, ``same_patient``.
    """
    _check_actor(actor, at)
    _known(index, to_patient_id)
    current = active_link(index, institution, mrn_ref)
    if current is None:
        raise IndexConflict("mrn_not_linked", "The MRN is not linked to a patient.")
    if current.patient_id == to_patient_id:
        raise IndexConflict("same_patient", "The MRN is already linked to this patient.")
    return _commit(
        index,
        IndexEvent(
            seq=index.last_seq + 1,
            kind=EventKind.MRN_LINK_CORRECTED,
            patient_id=to_patient_id,
            actor=actor,
            at=at,
            reason=reason,
            institution=institution,
            mrn_ref=mrn_ref,
            previous_patient_id=current.patient_id,
            supersedes=current.linked_seq,
        ),
    )


def correct_hkid(
    index: PatientIndex,
    *,
    patient_id: str,
    hkid_ref: str,
    actor: str,
    at: datetime,
    reason: ChangeReason,
) -> tuple[PatientIndex, IndexEvent]:
    """Record the right HKID for a patient; the event keeps the reference it replaces.

    Raises:
        IndexConflict: ``unknown_patient``, ``same_hkid``, ``hkid_already_registered``.
    """
    _check_actor(actor, at)
    patient = _known(index, patient_id)
    if patient.hkid_ref == hkid_ref:
        raise IndexConflict("same_hkid", "The patient already has this HKID.")
    if hkid_ref in index.hkids:
        raise IndexConflict(
            "hkid_already_registered", "A patient with this HKID is already registered."
        )
    return _commit(
        index,
        IndexEvent(
            seq=index.last_seq + 1,
            kind=EventKind.HKID_CORRECTED,
            patient_id=patient_id,
            actor=actor,
            at=at,
            reason=reason,
            hkid_ref=hkid_ref,
            previous_hkid_ref=patient.hkid_ref,
        ),
    )


# -- the fold --------------------------------------------------------------------------------


def replay(events: Iterable[IndexEvent]) -> PatientIndex:
    """Rebuild the index from its events (in sequence order)."""
    index = empty_index()
    for event in events:
        index = apply(index, event)
    return index


def apply(index: PatientIndex, event: IndexEvent) -> PatientIndex:
    """The state after one event. Events are appended in order: seq is last_seq + 1."""
    if event.seq != index.last_seq + 1:
        raise ValueError("events must be applied in sequence")
    patients = dict(index.patients)
    hkids = dict(index.hkids)
    links = list(index.links)
    if event.kind is EventKind.PATIENT_REGISTERED:
        patients[event.patient_id] = IndexedPatient(
            event.patient_id, event.hkid_ref, event.at, event.actor
        )
        if event.hkid_ref is not None:
            hkids[event.hkid_ref] = event.patient_id
    elif event.kind is EventKind.HKID_CORRECTED:
        patient = patients[event.patient_id]
        if event.previous_hkid_ref is not None:
            hkids.pop(event.previous_hkid_ref, None)
        assert event.hkid_ref is not None
        hkids[event.hkid_ref] = event.patient_id
        patients[event.patient_id] = replace(patient, hkid_ref=event.hkid_ref)
    else:
        assert event.institution is not None and event.mrn_ref is not None
        if event.kind in (EventKind.MRN_UNLINKED, EventKind.MRN_LINK_CORRECTED):
            links = [_end(link, event) for link in links]
        if event.kind in (EventKind.MRN_LINKED, EventKind.MRN_LINK_CORRECTED):
            links.append(
                MrnLink(
                    event.institution,
                    event.mrn_ref,
                    event.patient_id,
                    LinkState.ACTIVE,
                    event.seq,
                    event.at,
                    event.actor,
                )
            )
    return PatientIndex(patients, hkids, tuple(links), (*index.events, event))


def _end(link: MrnLink, event: IndexEvent) -> MrnLink:
    if link.linked_seq != event.supersedes or link.state is not LinkState.ACTIVE:
        return link
    corrected = event.kind is EventKind.MRN_LINK_CORRECTED
    return replace(
        link,
        state=LinkState.SUPERSEDED if corrected else LinkState.UNLINKED,
        ended_seq=event.seq,
        ended_at=event.at,
        ended_by=event.actor,
        superseded_by=event.seq if corrected else None,
    )


def _commit(index: PatientIndex, event: IndexEvent) -> tuple[PatientIndex, IndexEvent]:
    return apply(index, event), event


def _known(index: PatientIndex, patient_id: str) -> IndexedPatient:
    patient = index.patients.get(patient_id)
    if patient is None:
        raise IndexConflict("unknown_patient", "No such patient in the index.")
    return patient


def _check_actor(actor: str, at: datetime) -> None:
    if not actor:
        raise ValueError("every index change names its actor")
    if at.tzinfo is None:
        raise ValueError("index times must be timezone-aware")


# -- storage, for the later step -------------------------------------------------------------


class PatientIndexRepository(Protocol):
    """Where the index lives (a later step implements it on DynamoDB).

    ``append`` commits one event together with the uniqueness it implies (one patient per
    ``hkid_ref``; one ACTIVE link per ``(institution, mrn_ref)``; ``seq`` not yet taken),
    all or nothing, and raises :class:`IndexConflict` when a concurrent change broke one of
    them; the caller reloads and decides again. ``events`` pages through the log.
    """

    def load(self) -> PatientIndex: ...

    def append(self, event: IndexEvent) -> None: ...

    def events(self, after_seq: int = 0) -> Iterator[IndexEvent]: ...


class InMemoryPatientIndexRepository:
    """The reference implementation of :class:`PatientIndexRepository` (tests, local)."""

    def __init__(self) -> None:
        self._index = empty_index()

    def load(self) -> PatientIndex:
        return self._index

    def append(self, event: IndexEvent) -> None:
        if event.seq != self._index.last_seq + 1:
            raise IndexConflict("concurrent_change", "The index changed; reload and retry.")
        self._index = apply(self._index, event)

    def events(self, after_seq: int = 0) -> Iterator[IndexEvent]:
        return (e for e in self._index.events if e.seq > after_seq)
