"""Audit entries: byte-stable canonical encoding, strict parsing, no content, no names."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.ledger.entries import (
    MAX_ENTRY_BYTES,
    Action,
    Actor,
    AuditEntry,
    Outcome,
    Resource,
    ResourceType,
    Role,
    patient_ref,
    timestamp_ms,
)
from app.ledger.errors import InvalidEntry
from app.ledger.merkle import MerkleLog, verify_inclusion

VECTORS = json.loads(
    (Path(__file__).parent / "testdata" / "entry_vectors.json").read_text(encoding="utf-8")
)
KEY = bytes.fromhex(VECTORS["patient_ref_key_hex"])


# --- golden vectors ------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["name"])
def test_golden_entries_are_byte_stable(vector: dict[str, Any]) -> None:
    canonical = vector["canonical"].encode("ascii")
    entry = AuditEntry.from_dict(vector["fields"])
    assert entry.to_bytes() == canonical
    assert AuditEntry.from_bytes(canonical) == entry
    assert AuditEntry.from_bytes(canonical).to_dict() == vector["fields"]
    expected_leaf = hashlib.sha256(b"\x00" + canonical).hexdigest()
    assert expected_leaf == vector["leaf_hash"]
    assert entry.leaf_hash().hex() == expected_leaf


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda v: v["desc"])
def test_golden_invalid_encodings_are_refused(vector: dict[str, Any]) -> None:
    raw = vector["bytes"].encode("utf-8")
    with pytest.raises(InvalidEntry) as caught:
        AuditEntry.from_bytes(raw)
    assert vector["refused_because"] in str(caught.value)


@pytest.mark.parametrize(
    "leaked",
    [
        "chest pain",
        "Dr Synthetic",
        "synthetic.doctor@example.org",
        "chan-tai-man",
        "A1234567",
        "synthetic-patient-0001",
        "SYN-PT-000042",
        "lab_result_text",
    ],
)
def test_refusals_never_echo_the_refused_value(leaked: str) -> None:
    cases = [v for v in VECTORS["invalid"] if leaked in v["bytes"]]
    assert cases, f"no golden invalid case carries {leaked!r}"
    for case in cases:
        with pytest.raises(InvalidEntry) as caught:
            AuditEntry.from_bytes(case["bytes"].encode("utf-8"))
        assert leaked not in str(caught.value)
        assert caught.value.__cause__ is None or leaked not in str(caught.value.__cause__)


def test_a_documented_entry_spelled_out() -> None:
    # The format, written by hand, so a change to the encoding cannot go unnoticed.
    entry = AuditEntry(
        sequence=7,
        timestamp_ms=1795599000000,
        actor=Actor("service:sequencer", (Role.SERVICE,)),
        action=Action.CREATE,
        resource=Resource(ResourceType.AUDIT, "checkpoint-7"),
        outcome=Outcome.SUCCESS,
        reason="scheduled",
        request_id="req-7",
    )
    assert entry.to_bytes() == (
        b'{"action":"create","actor":{"roles":["service"],"sub":"service:sequencer"},'
        b'"outcome":"success","reason":"scheduled","request_id":"req-7",'
        b'"resource":{"id":"checkpoint-7","type":"audit"},"sequence":7,'
        b'"timestamp_ms":1795599000000,"version":1}'
    )


# --- patient references --------------------------------------------------------------------


def test_patient_ref_golden_and_independent() -> None:
    for vector in VECTORS["patient_refs"]:
        ref = patient_ref(vector["patient_id"], KEY)
        assert ref == vector["ref"]
        mac = hmac.new(
            KEY,
            b"hub/ledger/patient-ref/v1\x00" + vector["patient_id"].encode(),
            hashlib.sha256,
        )
        assert ref == "pt1-" + mac.hexdigest()
        assert vector["patient_id"] not in ref


def test_patient_ref_is_keyed() -> None:
    other_key = bytes(32)
    assert patient_ref("synthetic-patient-0001", KEY) != patient_ref(
        "synthetic-patient-0001", other_key
    )
    assert patient_ref("p1", KEY) != patient_ref("p2", KEY)
    assert patient_ref("p1", KEY) == patient_ref("p1", KEY)
    with pytest.raises(InvalidEntry):
        patient_ref("p1", b"too short a key")
    with pytest.raises(InvalidEntry):
        patient_ref("", KEY)


# --- construction refuses what the ledger must never hold ----------------------------------


def _entry(**changes: Any) -> AuditEntry:
    base = AuditEntry.from_dict(VECTORS["valid"][0]["fields"])
    return replace(base, **changes)


def test_the_entry_type_has_no_room_for_content() -> None:
    fields = VECTORS["valid"][0]["fields"]
    with pytest.raises(TypeError):
        AuditEntry(**{**_kwargs(fields), "note": "clinical text"})
    with pytest.raises(InvalidEntry, match="unknown fields"):
        AuditEntry.from_dict({**fields, "patient_name": "Synthetic Patient"})
    with pytest.raises(InvalidEntry, match="unknown fields"):
        Actor.from_dict({**fields["actor"], "email": "x"})
    with pytest.raises(InvalidEntry, match="unknown fields"):
        Resource.from_dict({**fields["resource"], "content": "x"})


def _kwargs(fields: dict[str, Any]) -> dict[str, Any]:
    entry = AuditEntry.from_dict(fields)
    return {
        "sequence": entry.sequence,
        "timestamp_ms": entry.timestamp_ms,
        "actor": entry.actor,
        "action": entry.action,
        "resource": entry.resource,
        "outcome": entry.outcome,
        "reason": entry.reason,
        "request_id": entry.request_id,
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"reason": "policy said yes because the doctor is nice"},
        {"reason": ""},
        {"request_id": "request with spaces"},
        {"action": "peek"},
        {"outcome": True},
        {"sequence": True},
        {"sequence": 1.0},
        {"timestamp_ms": -5},
        {"version": 2},
        {"version": True},
        {"actor": {"sub": "x"}},
        {"resource": "record:1"},
    ],
)
def test_constructor_validates(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidEntry):
        _entry(**changes)


@pytest.mark.parametrize(
    ("cls", "args"),
    [
        (Actor, ("Synthetic Doctor",)),
        (Actor, ("0b7c7f0e-1f7a-4c1e-9f3e-2d6a1b9c8e01", ("doctor", "doctor"))),
        (Actor, ("0b7c7f0e-1f7a-4c1e-9f3e-2d6a1b9c8e01", "doctor")),
        (Actor, ("0B7C7F0E-1F7A-4C1E-9F3E-2D6A1B9C8E01",)),
        (Actor, ("anonymous", (), "12345")),
        (Actor, ("anonymous", (), None, "Victoria General")),
        (Resource, ("record", "Z123456(7)")),
        (Resource, ("record", "AB1234567")),
        (Resource, ("patient", "rec-1")),
        (Resource, ("record", "rec-1", "pt1-" + "0" * 63)),
        (Resource, ("record", "has space")),
        (Resource, ("record", "n\u00e9e")),
    ],
)
def test_parts_refuse_names_and_raw_identifiers(cls: type, args: tuple[Any, ...]) -> None:
    with pytest.raises(InvalidEntry):
        cls(*args)


def test_roles_are_stored_sorted() -> None:
    actor = Actor("anonymous", ("specialist", "doctor"))
    assert actor.roles == (Role.DOCTOR, Role.SPECIALIST)


def test_oversized_input_is_refused_before_parsing() -> None:
    with pytest.raises(InvalidEntry, match="exceeds"):
        AuditEntry.from_bytes(b" " * (MAX_ENTRY_BYTES + 1))
    with pytest.raises(InvalidEntry):
        AuditEntry.from_bytes("not bytes")  # type: ignore[arg-type]


# --- time ----------------------------------------------------------------------------------


def test_timestamps_are_utc_milliseconds() -> None:
    moment = datetime(2026, 11, 25, 9, 30, 0, 123456, tzinfo=UTC)
    assert timestamp_ms(moment) == 1795599000123
    hong_kong = timezone(timedelta(hours=8))
    assert timestamp_ms(moment.astimezone(hong_kong)) == 1795599000123
    assert _entry(timestamp_ms=1795599000123).timestamp == moment.replace(microsecond=123000)
    with pytest.raises(InvalidEntry):
        timestamp_ms(datetime(2026, 11, 25, 9, 30))  # naive: which zone?


# --- properties ----------------------------------------------------------------------------

_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.:-]{0,40}\Z").filter(
    lambda s: re.fullmatch(r"[A-Z]{1,2}[0-9]{6}[0-9A]?", s) is None  # not identity-card shaped
)
_actors = st.builds(
    Actor,
    sub=st.one_of(st.uuids().map(str), st.just("anonymous"), st.just("service:sequencer")),
    roles=st.lists(st.sampled_from(Role), unique=True).map(tuple),
    mchk_reg_no=st.one_of(st.none(), st.from_regex(r"\A[A-Z]{1,2}\d{4,6}\Z")),
    institution_id=st.one_of(st.none(), st.from_regex(r"\A[a-z0-9][a-z0-9-]{1,39}\Z")),
)
_resources = st.one_of(
    st.builds(
        Resource,
        type=st.sampled_from([t for t in ResourceType if t is not ResourceType.PATIENT]),
        id=_ids,
        patient_ref=st.one_of(st.none(), st.text(min_size=1).map(lambda p: patient_ref(p, KEY))),
    ),
    st.builds(
        Resource,
        type=st.just(ResourceType.PATIENT),
        id=st.text(min_size=1).map(lambda p: patient_ref(p, KEY)),
    ),
)
_entries = st.builds(
    AuditEntry,
    sequence=st.integers(0, 2**53 - 1),
    timestamp_ms=st.integers(0, 2**53 - 1),
    actor=_actors,
    action=st.sampled_from(Action),
    resource=_resources,
    outcome=st.sampled_from(Outcome),
    reason=st.from_regex(r"\A[a-z][a-z0-9_.:-]{0,20}\Z"),
    request_id=_ids,
)


@settings(max_examples=300, deadline=None)
@given(_entries)
def test_round_trip_is_exact_and_canonical(entry: AuditEntry) -> None:
    data = entry.to_bytes()
    assert AuditEntry.from_bytes(data) == entry
    assert AuditEntry.from_bytes(data).to_bytes() == data
    # Canonical form is JSON with sorted keys and no whitespace (RFC 8785 for ASCII data).
    assert data == json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()
    assert data.isascii() and len(data) <= MAX_ENTRY_BYTES


@settings(max_examples=100, deadline=None)
@given(_entries, st.data())
def test_any_reencoding_changes_bytes_and_is_refused(
    entry: AuditEntry, data: st.DataObject
) -> None:
    canonical = entry.to_bytes()
    variant = data.draw(
        st.sampled_from(
            [
                json.dumps(entry.to_dict()).encode(),  # spaces, keys in field order
                json.dumps(entry.to_dict(), sort_keys=True, indent=0).encode(),
                canonical + b" ",
                b" " + canonical,
            ]
        )
    )
    assert variant != canonical
    with pytest.raises(InvalidEntry):
        AuditEntry.from_bytes(variant)


def test_entries_go_into_the_tree_as_their_canonical_bytes() -> None:
    log = MerkleLog()
    entries = [AuditEntry.from_dict(v["fields"]) for v in VECTORS["valid"]]
    for e in entries:
        log.append(e.to_bytes())
    for i, e in enumerate(entries):
        verify_inclusion(e.leaf_hash(), i, log.size, log.inclusion_proof(i), log.root())
