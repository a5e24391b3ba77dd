"""The patient index core: keyed references, link/unlink/correct, and history never lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from app.interop import convert
from app.patients import index as ix
from app.patients.hkid import parse_hkid
from app.patients.index import (
    ChangeReason,
    EventKind,
    IndexConflict,
    LinkState,
    MatchOutcome,
)
from tests.app.interop.interop_testkit import manifest, sample

KEY = bytes(range(32))
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HKID = parse_hkid("A123456(3)")
RIGHT_CHECK = "6"  # B123456(6)


def _registered(*patients: tuple[str, str | None]) -> ix.PatientIndex:
    index = ix.empty_index()
    for patient_id, hkid_ref in patients:
        index, _ = ix.register_patient(
            index, patient_id=patient_id, hkid_ref=hkid_ref, actor="ZZ00001", at=T0
        )
    return index


def test_references_are_keyed_and_domain_separated() -> None:
    ref = ix.hkid_reference(HKID, KEY)
    assert ref.startswith("hk1-") and "123456" not in ref
    assert ref == ix.hkid_reference(parse_hkid("a123456 (3)"), KEY)
    assert ref != ix.hkid_reference(HKID, bytes(32))
    assert ix.mrn_reference("clinic-a", "A1234563", KEY) != "mr1-" + ref[4:]
    assert ix.mrn_reference("clinic-a", "M1", KEY) != ix.mrn_reference("clinic-b", "M1", KEY)
    # the separator keeps (institution, MRN) pairs apart
    assert ix.mrn_reference("a", "bc", KEY) != ix.mrn_reference("ab", "c", KEY)
    with pytest.raises(ValueError):
        ix.hkid_reference(HKID, b"short")


def test_link_unlink_and_lookups() -> None:
    hk = ix.hkid_reference(HKID, KEY)
    mrn = ix.mrn_reference("clinic-a", "M1", KEY)
    index = _registered(("p1", hk))
    index, linked = ix.link_mrn(
        index, patient_id="p1", institution="clinic-a", mrn_ref=mrn, actor="ZZ1", at=T0
    )
    assert ix.resolve_mrn(index, "clinic-a", mrn) == ix.resolve_hkid(index, hk) == "p1"
    with pytest.raises(IndexConflict) as caught:
        ix.link_mrn(index, patient_id="p1", institution="clinic-a", mrn_ref=mrn, actor="a", at=T0)
    assert caught.value.code == "already_linked" and caught.value.status_code == 409
    index, unlinked = ix.unlink_mrn(
        index,
        institution="clinic-a",
        mrn_ref=mrn,
        actor="ZZ2",
        at=T0,
        reason=ChangeReason.MRN_RETIRED,
    )
    assert ix.resolve_mrn(index, "clinic-a", mrn) is None
    (link,) = index.links
    assert link.state is LinkState.UNLINKED and link.ended_seq == unlinked.seq
    assert unlinked.supersedes == linked.seq


def test_correcting_a_wrong_link_supersedes_it_and_keeps_history() -> None:
    mrn = ix.mrn_reference("clinic-a", "M1", KEY)
    index = _registered(("p1", None), ("p2", None))
    index, linked = ix.link_mrn(
        index, patient_id="p1", institution="clinic-a", mrn_ref=mrn, actor="ZZ1", at=T0
    )
    later = T0 + timedelta(days=1)
    index, corrected = ix.correct_mrn_link(
        index,
        institution="clinic-a",
        mrn_ref=mrn,
        to_patient_id="p2",
        actor="ZZ9",
        at=later,
        reason=ChangeReason.WRONG_PATIENT,
    )
    assert ix.resolve_mrn(index, "clinic-a", mrn) == "p2"
    old, new = index.links
    assert (old.patient_id, old.state, old.superseded_by) == (
        "p1",
        LinkState.SUPERSEDED,
        corrected.seq,
    )
    assert (old.linked_at, old.ended_at, old.ended_by) == (T0, later, "ZZ9")
    assert (new.patient_id, new.state) == ("p2", LinkState.ACTIVE)
    assert corrected.previous_patient_id == "p1" and corrected.supersedes == linked.seq
    # both patients' histories show the correction; p1's still shows its original link
    assert [e.kind for e in ix.history_of(index, "p1")] == [
        EventKind.PATIENT_REGISTERED,
        EventKind.MRN_LINKED,
        EventKind.MRN_LINK_CORRECTED,
    ]
    assert ix.resolve_mrn(ix.as_of(index, linked.seq), "clinic-a", mrn) == "p1"


def test_linking_an_mrn_held_by_another_patient_is_a_mismatch_to_correct() -> None:
    mrn = ix.mrn_reference("clinic-a", "M1", KEY)
    index = _registered(("p1", None), ("p2", None))
    index, _ = ix.link_mrn(
        index, patient_id="p1", institution="clinic-a", mrn_ref=mrn, actor="a", at=T0
    )
    with pytest.raises(IndexConflict) as caught:
        ix.link_mrn(index, patient_id="p2", institution="clinic-a", mrn_ref=mrn, actor="a", at=T0)
    assert caught.value.code == "mrn_linked_to_another_patient"


def test_hkid_correction_keeps_the_previous_reference_in_the_event() -> None:
    wrong = ix.hkid_reference(parse_hkid("A123456(3)"), KEY)
    right = ix.hkid_reference(parse_hkid("B123456(RIGHT)".replace("RIGHT", RIGHT_CHECK)), KEY)
    index = _registered(("p1", wrong))
    index, event = ix.correct_hkid(
        index,
        patient_id="p1",
        hkid_ref=right,
        actor="ZZ9",
        at=T0,
        reason=ChangeReason.DATA_ENTRY_ERROR,
    )
    assert ix.resolve_hkid(index, right) == "p1"
    assert ix.resolve_hkid(index, wrong) is None
    assert event.previous_hkid_ref == wrong
    assert ix.as_of(index, 1).patients["p1"].hkid_ref == wrong
    taken = _registered(("p1", wrong), ("p2", right))
    with pytest.raises(IndexConflict) as caught:
        ix.correct_hkid(
            taken,
            patient_id="p1",
            hkid_ref=right,
            actor="a",
            at=T0,
            reason=ChangeReason.DATA_ENTRY_ERROR,
        )
    assert caught.value.code == "hkid_already_registered"


def test_refused_changes_change_nothing() -> None:
    index = _registered(("p1", "hk1-x"))
    for attempt in (
        lambda: ix.register_patient(index, patient_id="p1", hkid_ref=None, actor="a", at=T0),
        lambda: ix.register_patient(index, patient_id="p2", hkid_ref="hk1-x", actor="a", at=T0),
        lambda: ix.link_mrn(index, patient_id="p9", institution="i", mrn_ref="m", actor="a", at=T0),
        lambda: ix.unlink_mrn(
            index, institution="i", mrn_ref="m", actor="a", at=T0, reason=ChangeReason.MRN_RETIRED
        ),
    ):
        with pytest.raises(IndexConflict):
            attempt()
    assert index == _registered(("p1", "hk1-x"))
    with pytest.raises(ValueError):
        ix.register_patient(index, patient_id="p3", hkid_ref=None, actor="", at=T0)
    with pytest.raises(ValueError):
        ix.register_patient(
            index, patient_id="p3", hkid_ref=None, actor="a", at=T0.replace(tzinfo=None)
        )


def test_match_subject_outcomes() -> None:
    hk1, hk2 = "hk1-a", "hk1-b"
    m1, m2 = "mr1-a", "mr1-b"
    index = _registered(("p1", hk1), ("p2", hk2))
    index, _ = ix.link_mrn(index, patient_id="p1", institution="i", mrn_ref=m1, actor="a", at=T0)
    match = ix.match_subject
    assert match(index, institution="i", mrn_ref=m1, hkid_ref=hk1) == ix.SubjectMatch(
        MatchOutcome.MATCHED, "p1"
    )
    assert match(index, institution="i", mrn_ref=m1, hkid_ref=None).outcome is MatchOutcome.MATCHED
    assert match(index, institution="i", mrn_ref=m2, hkid_ref=hk2) == ix.SubjectMatch(
        MatchOutcome.LINKABLE, "p2"
    )
    assert match(index, institution="i", mrn_ref=m1, hkid_ref=hk2).outcome is MatchOutcome.MISMATCH
    assert (
        match(index, institution="i", mrn_ref=m1, hkid_ref="hk1-new").outcome
        is MatchOutcome.MISMATCH
    )
    assert match(index, institution="i", mrn_ref=m2, hkid_ref=None).outcome is MatchOutcome.UNKNOWN


def test_two_institutions_sources_meet_on_one_patient() -> None:
    """The synthetic samples from clinic-a (HL7 v2) and hospital-b (CDA) file under one
    patient: registered from the first, linked from the second through the HKID."""

    def subject(name: str):
        entry = next(s for s in manifest()["samples"] if s["file"] == name)
        return convert(sample(name), entry["media_type"], institution=entry["institution"]).subject

    first, second = subject("adt_a01.hl7"), subject("discharge_summary.cda.xml")
    assert first.hkid is not None and second.hkid is not None and first.mrn and second.mrn
    refs = [
        (s.institution, ix.mrn_reference(s.institution, s.mrn, KEY), ix.hkid_reference(s.hkid, KEY))
        for s in (first, second)
    ]
    index = ix.empty_index()
    (inst_a, mrn_a, hk_a), (inst_b, mrn_b, hk_b) = refs
    assert (
        ix.match_subject(index, institution=inst_a, mrn_ref=mrn_a, hkid_ref=hk_a).outcome
        is MatchOutcome.UNKNOWN
    )
    index, _ = ix.register_patient(index, patient_id="pt-1", hkid_ref=hk_a, actor="intake", at=T0)
    index, _ = ix.link_mrn(
        index, patient_id="pt-1", institution=inst_a, mrn_ref=mrn_a, actor="intake", at=T0
    )
    match = ix.match_subject(index, institution=inst_b, mrn_ref=mrn_b, hkid_ref=hk_b)
    assert match == ix.SubjectMatch(MatchOutcome.LINKABLE, "pt-1")
    index, _ = ix.link_mrn(
        index, patient_id="pt-1", institution=inst_b, mrn_ref=mrn_b, actor="intake", at=T0
    )
    assert {link.institution for link in ix.links_of(index, "pt-1")} == {"clinic-a", "hospital-b"}
    # nothing the index holds contains the HKID or an MRN in clear
    held = repr(index)
    for clear in (first.hkid.value, first.mrn, second.mrn):
        assert clear not in held


def test_repository_refuses_a_stale_append() -> None:
    repo = ix.InMemoryPatientIndexRepository()
    snapshot = repo.load()
    _, event = ix.register_patient(snapshot, patient_id="p1", hkid_ref=None, actor="a", at=T0)
    _, rival = ix.register_patient(snapshot, patient_id="p2", hkid_ref=None, actor="b", at=T0)
    repo.append(event)
    with pytest.raises(IndexConflict) as caught:
        repo.append(rival)
    assert caught.value.code == "concurrent_change"
    assert [e.patient_id for e in repo.events()] == ["p1"]


# -- property: any sequence of operations keeps the history whole ---------------------------

PATIENTS = ["p1", "p2", "p3"]
HKIDS = ["hk1-1", "hk1-2", "hk1-3", "hk1-4"]
MRNS = [("i1", "mr1-1"), ("i1", "mr1-2"), ("i2", "mr1-1")]


class IndexMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.index = ix.empty_index()
        self.logs: list[tuple[ix.IndexEvent, ...]] = []
        self.clock = T0

    def _do(self, operation) -> None:  # type: ignore[no-untyped-def]
        before = self.index
        self.clock += timedelta(minutes=1)
        try:
            self.index, event = operation()
        except IndexConflict:
            assert self.index == before  # a refusal changes nothing
            return
        assert event.seq == before.last_seq + 1 and self.index.events[-1] == event
        self.logs.append(self.index.events)

    @rule(patient=st.sampled_from(PATIENTS), hkid=st.sampled_from([*HKIDS, None]))
    def register(self, patient: str, hkid: str | None) -> None:
        self._do(
            lambda: ix.register_patient(
                self.index, patient_id=patient, hkid_ref=hkid, actor="a", at=self.clock
            )
        )

    @rule(patient=st.sampled_from(PATIENTS), mrn=st.sampled_from(MRNS))
    def link(self, patient: str, mrn: tuple[str, str]) -> None:
        self._do(
            lambda: ix.link_mrn(
                self.index,
                patient_id=patient,
                institution=mrn[0],
                mrn_ref=mrn[1],
                actor="a",
                at=self.clock,
            )
        )

    @rule(mrn=st.sampled_from(MRNS))
    def unlink(self, mrn: tuple[str, str]) -> None:
        self._do(
            lambda: ix.unlink_mrn(
                self.index,
                institution=mrn[0],
                mrn_ref=mrn[1],
                actor="a",
                at=self.clock,
                reason=ChangeReason.MRN_RETIRED,
            )
        )

    @rule(patient=st.sampled_from(PATIENTS), mrn=st.sampled_from(MRNS))
    def correct_link(self, patient: str, mrn: tuple[str, str]) -> None:
        self._do(
            lambda: ix.correct_mrn_link(
                self.index,
                institution=mrn[0],
                mrn_ref=mrn[1],
                to_patient_id=patient,
                actor="a",
                at=self.clock,
                reason=ChangeReason.WRONG_PATIENT,
            )
        )

    @rule(patient=st.sampled_from(PATIENTS), hkid=st.sampled_from(HKIDS))
    def correct_hkid(self, patient: str, hkid: str) -> None:
        self._do(
            lambda: ix.correct_hkid(
                self.index,
                patient_id=patient,
                hkid_ref=hkid,
                actor="a",
                at=self.clock,
                reason=ChangeReason.DATA_ENTRY_ERROR,
            )
        )

    @invariant()
    def history_only_grows(self) -> None:
        for earlier, later in zip(self.logs, self.logs[1:], strict=False):
            assert later[: len(earlier)] == earlier

    @invariant()
    def state_is_the_fold_of_its_events(self) -> None:
        assert ix.replay(self.index.events) == self.index

    @invariant()
    def at_most_one_active_link_per_mrn_and_one_patient_per_hkid(self) -> None:
        links = self.index.links
        active = [(k.institution, k.mrn_ref) for k in links if k.state is LinkState.ACTIVE]
        assert len(active) == len(set(active))
        held = [p.hkid_ref for p in self.index.patients.values() if p.hkid_ref]
        assert len(held) == len(set(held))
        assert {v: k for k, v in self.index.hkids.items()} == {
            p.patient_id: p.hkid_ref for p in self.index.patients.values() if p.hkid_ref
        }

    @invariant()
    def every_link_period_is_kept(self) -> None:
        began = [
            e.seq
            for e in self.index.events
            if e.kind in (EventKind.MRN_LINKED, EventKind.MRN_LINK_CORRECTED)
        ]
        assert [link.linked_seq for link in self.index.links] == began
        for link in self.index.links:
            if link.state is not LinkState.ACTIVE:
                assert link.ended_seq is not None and link.ended_at is not None

    @invariant()
    def past_states_are_recoverable(self) -> None:
        if self.index.events:
            seq = self.index.events[len(self.index.events) // 2].seq
            assert ix.as_of(self.index, seq).events == self.index.events[:seq]


TestIndexMachine = IndexMachine.TestCase
TestIndexMachine.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
