"""Property tests of the verifier on in-memory snapshots (no emulator): any single edit,
deletion or swap of stored entries is reported at exactly its first index, and an
untouched log always verifies, whatever the log and head sizes."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from app.ledger.checkpoint import SignedTreeHead, checkpoint_message, load_public_key
from app.ledger.entries import Action, Actor, AuditEntry, Outcome, Resource, ResourceType, Role
from app.ledger.merkle import MerkleLog, leaf_hash
from app.ledger.verify import LedgerSnapshot, verify_snapshot

KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC = load_public_key(
    KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
)


def _entry(seq: int, outcome: Outcome = Outcome.SUCCESS) -> bytes:
    return AuditEntry(
        sequence=seq,
        timestamp_ms=1795599000000 + seq,
        actor=Actor("0b6f7c1e-2d3a-4c5b-8e9f-0123456789ab", (Role.DOCTOR,), "M20001"),
        action=Action.READ,
        resource=Resource(ResourceType.GROUP, f"g{seq}"),
        outcome=outcome,
        reason="member-views-open-group",
        request_id=f"req-{seq}",
    ).to_bytes()


def _snapshot(size: int, head_sizes: list[int]) -> LedgerSnapshot:
    entries = {i: _entry(i) for i in range(size)}
    log = MerkleLog()
    for i in range(size):
        log.append(entries[i])
    heads = []
    for s in sorted(set(head_sizes)):
        msg = checkpoint_message("prop", s, log.root(s), 1000 + s)
        sig = KEY.sign(msg, ec.ECDSA(hashes.SHA256()))
        heads.append(SignedTreeHead("prop", s, log.root(s), 1000 + s, sig, "k"))
    leaves = {i: leaf_hash(entries[i]) for i in range(size)}
    return LedgerSnapshot(entries, heads, leaves)


logs = st.integers(min_value=2, max_value=40).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.integers(min_value=1, max_value=n), min_size=0, max_size=5),
    )
)


@settings(max_examples=60, deadline=None)
@given(logs)
def test_an_untouched_log_verifies(log: tuple[int, list[int]]) -> None:
    n, sizes = log
    report = verify_snapshot(_snapshot(n, [*sizes, n]), PUBLIC)
    assert report.ok and report.first_bad_index is None
    assert report.inclusions_checked == n


@settings(max_examples=80, deadline=None)
@given(logs, st.data())
def test_one_tampering_is_reported_at_its_index(
    log: tuple[int, list[int]], data: st.DataObject
) -> None:
    n, sizes = log
    snapshot = _snapshot(n, [*sizes, n])
    kind = data.draw(st.sampled_from(["edit", "delete", "swap"]))
    index = data.draw(st.integers(min_value=0, max_value=n - 2 if kind == "swap" else n - 1))
    if kind == "edit":
        snapshot.entries[index] = _entry(index, Outcome.DENIED)
    elif kind == "delete":
        del snapshot.entries[index]
    else:
        a, b = snapshot.entries[index], snapshot.entries[index + 1]
        snapshot.entries[index], snapshot.entries[index + 1] = b, a
    report = verify_snapshot(snapshot, PUBLIC)
    assert not report.ok
    assert report.first_bad_index == index, (kind, report.findings)
