"""The durable ledger on the moto server: sequencing, transactions, signed heads, proofs."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import ec
from ledger_testkit import LedgerEnv

from app.audit.events import AuditedTransactionConflict, AuditEvent, Outcome
from app.ledger.checkpoint import BadSignature, SignedTreeHead, load_public_key, verify_head
from app.ledger.entries import AuditEntry
from app.ledger.errors import LedgerError
from app.ledger.merkle import MerkleLog, NodeId, leaf_hash, verify_consistency, verify_inclusion
from app.ledger.store import DynamoNodeStore, LedgerTable, entry_key, node_key
from app.ledger.trail import LedgerTrail, entry_for
from app.ledger.verify import snapshot_from_deployment, verify_snapshot

SUB = "0b6f7c1e-2d3a-4c5b-8e9f-0123456789ab"


def event(n: int = 0, action: str = "ViewGroup") -> AuditEvent:
    return AuditEvent(
        action=action,
        outcome=Outcome.ALLOW,
        reason="member-views-open-group",
        actor=SUB,
        actor_reg_no="M20001",
        institution="harbour-cardiac-alliance",
        resource=f"Group::g{n:04d}",
        actor_roles=("doctor",),
    )


def stored(env: LedgerEnv) -> dict[int, bytes]:
    return LedgerTable(env.dynamodb, env.table_name).all_entries()


def test_appends_are_durable_consecutive_and_carry_their_leaf_index(ledger_env: LedgerEnv) -> None:
    ledger = ledger_env.ledger()
    receipts = [ledger.trail.append(event(i)) for i in range(5)]
    assert [r.leaf_index for r in receipts] == [0, 1, 2, 3, 4]
    # Durable before return: read back with a fresh client-side view of the table.
    entries = stored(ledger_env)
    assert sorted(entries) == [0, 1, 2, 3, 4]
    for i, raw in entries.items():
        entry = AuditEntry.from_bytes(raw)
        assert entry.sequence == i and entry.resource.id == f"g{i:04d}"
        assert entry.actor.roles[0].value == "doctor"
    # A second writer (another process: its own hint) continues the same sequence.
    other = LedgerTrail(LedgerTable(ledger_env.dynamodb, ledger_env.table_name))
    assert other.append(event(9)).leaf_index == 5


def _own_item(env: LedgerEnv, key: str, condition: str = "attribute_not_exists(pk)") -> Any:
    return {
        "Put": {
            "TableName": env.table_name,
            "Item": {"pk": {"S": f"TEST#{key}"}, "sk": {"S": "x"}},
            "ConditionExpression": condition,
        }
    }


def test_concurrent_writers_get_unique_gap_free_sequence_numbers(ledger_env: LedgerEnv) -> None:
    table = LedgerTable(ledger_env.dynamodb, ledger_env.table_name)
    # Four "processes" (separate trails and hints), two threads each, plain and
    # transactional appends mixed.
    trails = [LedgerTrail(table) for _ in range(4)]
    got: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    per_thread = 6

    def writer(t: int) -> None:
        trail = trails[t % 4]
        try:
            for n in range(per_thread):
                if (t + n) % 2:
                    r = trail.transact_append(event(n), [_own_item(ledger_env, f"{t}-{n}")])
                else:
                    r = trail.append(event(n))
                with lock:
                    got.append(r.leaf_index or 0)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    total = 8 * per_thread
    assert sorted(got) == list(range(total))  # no duplicate, no lost, no gap
    entries = stored(ledger_env)
    assert sorted(entries) == list(range(total))
    assert all(AuditEntry.from_bytes(raw).sequence == i for i, raw in entries.items())


def test_transaction_commits_change_and_entry_together_or_neither(ledger_env: LedgerEnv) -> None:
    trail = ledger_env.ledger().trail
    trail.append(event(0))
    receipt = trail.transact_append(event(1), [_own_item(ledger_env, "a")])
    assert receipt.leaf_index == 1
    # The caller's own condition fails: a conflict for the caller, and no entry.
    with pytest.raises(AuditedTransactionConflict):
        trail.transact_append(event(2), [_own_item(ledger_env, "a")])
    assert sorted(stored(ledger_env)) == [0, 1]
    # Another writer took the slot this trail believes is next: retried, never a conflict.
    LedgerTrail(LedgerTable(ledger_env.dynamodb, ledger_env.table_name)).append(event(3))
    again = trail.transact_append(event(4), [_own_item(ledger_env, "b")])
    assert again.leaf_index == 3
    assert sorted(stored(ledger_env)) == [0, 1, 2, 3]


def test_a_wrong_hint_cannot_commit_a_gap(ledger_env: LedgerEnv) -> None:
    trail = ledger_env.ledger().trail
    trail.append(event(0))
    trail._observed(5)  # a hint past the tail (as after a restored table)
    receipt = trail.transact_append(event(1), [_own_item(ledger_env, "gap")])
    # The ConditionCheck on entry n-1 refused slot 5; the trail re-read the tail.
    assert receipt.leaf_index == 1
    assert sorted(stored(ledger_env)) == [0, 1]


def test_the_store_refuses_to_overwrite_an_entry(ledger_env: LedgerEnv) -> None:
    trail = ledger_env.ledger().trail
    trail.append(event(0))
    table = trail.table
    assert table.put_entry(0, b"forged") is False
    assert AuditEntry.from_bytes(stored(ledger_env)[0]).resource.id == "g0000"


def test_signed_head_verifies_offline_with_the_kms_public_key(ledger_env: LedgerEnv) -> None:
    ledger = ledger_env.ledger()
    for i in range(7):
        ledger.trail.append(event(i))
    head = ledger.integrate()
    assert head is not None and head.size == 7
    # Offline: only the PEM from GetPublicKey and `cryptography`.
    pem = ledger.public_key_pem()
    key = load_public_key(pem)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    verify_head(head, key)
    expected = MerkleLog()
    for _, raw in sorted(stored(ledger_env).items()):
        expected.append(raw)
    assert head.root == expected.root()
    forged = SignedTreeHead(**{**head.__dict__, "size": 8})
    with pytest.raises(BadSignature):
        verify_head(forged, key)
    # The head is archived in the checkpoint bucket.
    keys = [
        o["Key"]
        for o in ledger_env.s3.list_objects_v2(Bucket=ledger_env.bucket)["Contents"]
        if o["Key"].startswith("ledger-checkpoints/")
    ]
    assert keys and keys[-1].startswith("ledger-checkpoints/000000000007-")


def test_proofs_come_from_stored_nodes_and_verify(ledger_env: LedgerEnv) -> None:
    ledger = ledger_env.ledger()
    heads = []
    for batch in (3, 5, 9):
        for i in range(batch):
            ledger.trail.append(event(i))
        heads.append(ledger.integrate())
    final = heads[-1]
    assert final is not None and final.size == 17
    entries = stored(ledger_env)
    for index in (0, 5, 16):
        leaf, raw, proof = ledger.inclusion(index, final.size)
        assert raw == entries[index] and leaf == leaf_hash(raw)
        verify_inclusion(leaf, index, final.size, proof, final.root)
    for old in heads[:-1]:
        assert old is not None
        proof = ledger.consistency(old.size, final.size)
        verify_consistency(old.size, final.size, proof, old.root, final.root)
    # O(log n): a proof reads its nodes in one batch, never the log.
    calls: list[int] = []
    table = ledger.table
    original = table.read_node_hashes

    def counting(ids: Any) -> list[bytes]:
        calls.append(len(ids))
        return original(ids)

    table.read_node_hashes = counting  # type: ignore[method-assign]
    store = DynamoNodeStore(table, final.size)
    assert store.tree_size() == 17
    ledger.inclusion(5, final.size)
    ledger.consistency(3, final.size)
    # One BatchGetItem per proof, of O(log n) nodes (at most 2 * ceil(log2 17) = 10),
    # plus the leaf itself for an inclusion proof.
    assert len(calls) == 3 and calls[1] == 1 and all(0 < c <= 10 for c in calls)
    # A missing entry still has its leaf and proof (the tree keeps the evidence).
    ledger_env.dynamodb.delete_item(TableName=ledger_env.table_name, Key=entry_key(5))
    leaf, raw, proof = ledger.inclusion(5, final.size)
    assert raw == b"" and leaf == leaf_hash(entries[5])
    verify_inclusion(leaf, 5, final.size, proof, final.root)


def test_racing_sequencers_do_not_fork(ledger_env: LedgerEnv) -> None:
    a, b = ledger_env.ledger(), ledger_env.ledger()
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            a.trail.append(event(n))
            n += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(4):
            racers = [threading.Thread(target=s.integrate) for s in (a, b)]
            for r in racers:
                r.start()
            for r in racers:
                r.join()
    finally:
        stop.set()
        writer.join()
    a.integrate()
    report = verify_snapshot(
        snapshot_from_deployment(
            ledger_env.dynamodb, ledger_env.s3, ledger_env.table_name, ledger_env.bucket
        ),
        load_public_key(a.public_key_pem()),
    )
    assert report.ok, report.findings
    assert report.consistency_checked >= 1


def test_sequencer_refuses_to_extend_a_tampered_tree(ledger_env: LedgerEnv) -> None:
    ledger = ledger_env.ledger()
    for i in range(4):
        ledger.trail.append(event(i))
    ledger.integrate()
    ledger.trail.append(event(4))
    ledger_env.dynamodb.update_item(
        TableName=ledger_env.table_name,
        Key=node_key(NodeId(2, 0)),
        UpdateExpression="SET #h = :h",
        ExpressionAttributeNames={"#h": "hash"},
        ExpressionAttributeValues={":h": {"B": b"\x00" * 32}},
    )
    with pytest.raises(LedgerError, match="tampered"):
        ledger.sequencer.integrate()  # type: ignore[union-attr]


def test_background_sequencer_covers_an_entry_within_two_seconds(ledger_env: LedgerEnv) -> None:
    ledger = ledger_env.ledger(interval=0.5)
    ledger.start()
    try:
        receipt = ledger.trail.append(event(0))
        acked = time.monotonic()
        while time.monotonic() - acked < 2.0:
            head = ledger.table.read_head()
            if head is not None and head.size > (receipt.leaf_index or 0):
                break
            time.sleep(0.05)
        else:
            pytest.fail("no signed head covered the entry within 2 s")
        assert time.monotonic() - acked < 2.0
    finally:
        ledger.stop()


def test_events_map_to_entries_without_content(ledger_env: LedgerEnv) -> None:
    e = AuditEvent(
        action="InviteMember",
        outcome=Outcome.DENY,
        reason="no-permitting-policy,guard",
        actor=SUB,
        actor_reg_no="M20001",
        institution="harbour-cardiac-alliance",
        resource="Group::abc",
        patient_ref="pt1-" + "a" * 64,
        details={"target": "M20002", "note": "free text never copied"},
        at=datetime(2026, 1, 2, tzinfo=UTC),
    )
    entry = entry_for(e, 3, "req-1")
    assert entry.action.value == "share" and entry.outcome.value == "denied"
    assert (entry.resource.type.value, entry.resource.id) == ("membership", "abc:M20002")
    assert entry.reason == "no-permitting-policy:guard"
    assert b"free text" not in entry.to_bytes()
    assert entry.request_id == "req-1" and entry.sequence == 3
    with pytest.raises(ValueError):
        entry_for(AuditEvent(action="Teleport", outcome=Outcome.ALLOW, reason="x", actor=SUB), 0)
    with pytest.raises(ValueError):  # a raw patient id is not a patient reference
        entry_for(
            AuditEvent(
                action="ViewGroup",
                outcome=Outcome.ALLOW,
                reason="x",
                actor=SUB,
                resource="Group::g",
                patient_ref="pt-synthetic-000042",
            ),
            0,
        )


def test_a_failing_ledger_write_is_not_reported_as_a_conflict(ledger_env: LedgerEnv) -> None:
    trail = LedgerTrail(LedgerTable(ledger_env.dynamodb, "no-such-table"))
    trail._observed(3)
    with pytest.raises(ClientError):
        trail.transact_append(event(0), [_own_item(ledger_env, "lost")])
    # The caller's item did not commit either.
    got = ledger_env.dynamodb.get_item(
        TableName=ledger_env.table_name, Key={"pk": {"S": "TEST#lost"}, "sk": {"S": "x"}}
    )
    assert "Item" not in got
    assert entry_key(0)["sk"]["S"] == "000000000000"


def test_inline_mode_signs_a_head_covering_the_response_receipts(ledger_env: LedgerEnv) -> None:
    """Where no background thread runs (Lambda), the receipt's head covers the entry."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from app.ledger.receipts import AuditReceiptMiddleware, parse_receipt_header

    ledger = ledger_env.ledger()
    ledger.inline = True
    app = FastAPI()
    app.add_middleware(AuditReceiptMiddleware, latest_head=ledger.response_head)

    @app.post("/act")
    def act() -> dict[str, int]:
        return {"index": ledger.trail.append(event(0)).leaf_index or 0}

    with_receipt = TestClient(app).post("/act")
    [(index, _)] = parse_receipt_header(with_receipt.headers["audit-receipt"])
    fields = dict(p.split("=", 1) for p in with_receipt.headers["audit-tree-head"].split(";"))
    assert int(fields["size"]) > index == with_receipt.json()["index"]
    head = ledger.table.read_head()
    assert head is not None and head.size == int(fields["size"])


class RecordingClient:
    """A DynamoDB client that records each operation it is asked for."""

    def __init__(self, real: Any):
        self.real = real
        self.operations: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if callable(attr) and not name.startswith("_") and name != "exceptions":
            self.operations.add(name)
        return attr


def test_the_ledger_needs_only_the_append_only_actions_the_service_role_has(
    ledger_env: LedgerEnv,
) -> None:
    """Everything the service does with the ledger table (append, transact, integrate,
    prove, list) uses only the IAM actions the role grants on it: no delete of any kind
    (BatchWriteItem would include deletes)."""
    from app.ledger.service import EntryQuery
    from infra.components.sharing_service import TABLE_ACTIONS

    recording = RecordingClient(ledger_env.dynamodb)
    env = LedgerEnv(**{**ledger_env.__dict__, "dynamodb": recording})
    ledger = env.ledger()
    for i in range(3):
        ledger.trail.append(event(i))
    ledger.trail.transact_append(event(3), [_own_item(ledger_env, "iam")])
    head = ledger.integrate()
    assert head is not None
    ledger.inclusion(1, head.size)
    ledger.consistency(1, head.size)
    ledger.entries(EntryQuery(actor=SUB))
    granted = {a.removeprefix("dynamodb:") for a in TABLE_ACTIONS}
    # TransactWriteItems is authorised per contained action (PutItem, ConditionCheckItem).
    used = {"".join(w.capitalize() for w in op.split("_")) for op in recording.operations}
    assert used - {"TransactWriteItems"} <= granted, used
    assert not used & {"DeleteItem", "BatchWriteItem"}


def test_a_filtered_listing_reads_on_past_index_pages_the_filter_drops(
    ledger_env: LedgerEnv,
) -> None:
    """A listing by actor and resource finds the match behind pages of the actor's other
    entries: the actor index is read page after page until ``limit`` entries match, not
    cut at ``limit`` index rows before the resource filter (which answered nothing)."""
    from app.ledger.service import EntryQuery

    ledger = ledger_env.ledger()
    ledger.index_page_size = 2
    for i in range(5):
        ledger.trail.append(event(i))  # one actor; resources g0000 .. g0004
    ledger.integrate()  # the index is written as entries are integrated
    found = ledger.entries(EntryQuery(actor=SUB, resource="group:g0004", limit=1))
    assert [(e.leaf_index, e.entry.resource.id) for e in found] == [(4, "g0004")]
    every = ledger.entries(EntryQuery(actor=SUB, limit=10))
    assert [e.leaf_index for e in every] == [0, 1, 2, 3, 4]  # three pages of two


def test_stored_nodes_equal_the_in_memory_tree_for_any_batching(ledger_env: LedgerEnv) -> None:
    """Integration in uneven batches stores exactly the complete-subtree hashes an
    in-memory RFC 9162 tree holds: every node, every level."""
    ledger = ledger_env.ledger()
    reference = MerkleLog()
    n = 0
    for batch in (1, 2, 3, 5, 8, 13):
        for _ in range(batch):
            ledger.trail.append(event(n))
            n += 1
        ledger.integrate()
    for _, raw in sorted(stored(ledger_env).items()):
        reference.append(raw)
    expected = {}
    for level in range(n.bit_length()):
        for index in range(n >> level):
            node = NodeId(level, index)
            expected[node] = reference.store.read_nodes([node])[0]
    got = ledger.table.read_node_hashes(list(expected))
    assert got == list(expected.values())
    assert len(expected) == 2 * n - n.bit_count()  # all complete subtrees of 32 leaves
