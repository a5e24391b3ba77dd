"""Batched sequencing (group commit) on the moto server: one TransactWriteItems carries up
to 99 entries, and the stored sequence numbers stay unique and gap-free under concurrent
writers (threads of one process and separate processes), with wrong and stale hints."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from ledger_testkit import LedgerEnv

from app.audit.events import AuditEvent, Outcome
from app.ledger.checkpoint import SignedTreeHead, load_public_key
from app.ledger.entries import AuditEntry
from app.ledger.errors import InvalidEntry
from app.ledger.merkle import MerkleLog
from app.ledger.store import LedgerTable
from app.ledger.trail import BATCH_MAX, LedgerTrail
from app.ledger.verify import snapshot_from_deployment, verify_snapshot

SUB = "0b6f7c1e-2d3a-4c5b-8e9f-0123456789ab"


def event(n: int, action: str = "ViewGroup") -> AuditEvent:
    return AuditEvent(
        action=action,
        outcome=Outcome.ALLOW,
        reason="member-views-open-group",
        actor=SUB,
        actor_reg_no="M20001",
        institution="harbour-cardiac-alliance",
        resource=f"Group::g{n:06d}",
        actor_roles=("doctor",),
    )


def table(env: LedgerEnv) -> LedgerTable:
    return LedgerTable(env.dynamodb, env.table_name)


def resources(env: LedgerEnv) -> dict[int, str]:
    """Stored entries by leaf index: the resource id each one records."""
    out = {}
    for seq, raw in table(env).all_entries().items():
        entry = AuditEntry.from_bytes(raw)
        assert entry.sequence == seq
        out[seq] = entry.resource.id
    return out


def test_a_batch_is_one_round_trip_of_consecutive_entries(ledger_env: LedgerEnv) -> None:
    trail = LedgerTrail(table(ledger_env))
    got = trail.append_many([event(i) for i in range(150)])
    assert [r.leaf_index for r in got] == list(range(150))
    assert trail.batches == 2  # 99 + 51: two transactions, not 150 writes
    assert resources(ledger_env) == {i: f"g{i:06d}" for i in range(150)}
    # A lone append after it is one conditional PutItem continuing the same sequence.
    assert trail.append(event(150)).leaf_index == 150
    assert BATCH_MAX == 99  # + the ConditionCheck: TransactWriteItems' 100-item limit


def test_waiting_appends_are_written_together_by_the_thread_that_gets_the_turn(
    ledger_env: LedgerEnv,
) -> None:
    trail = LedgerTrail(table(ledger_env))
    trail.append(event(0))
    before = trail.batches
    got: dict[int, int] = {}
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            got[n] = trail.append(event(n)).leaf_index or 0
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    with trail._turn:  # another thread is writing: these five queue up behind it
        threads = [threading.Thread(target=writer, args=(n,)) for n in range(1, 6)]
        for th in threads:
            th.start()
        deadline = time.monotonic() + 10
        while len(trail._waiting) < 5 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(trail._waiting) == 5
    for th in threads:
        th.join()
    assert not errors
    assert trail.batches == before + 1  # one transaction wrote all five
    assert sorted(got.values()) == [1, 2, 3, 4, 5]
    stored = resources(ledger_env)
    assert all(stored[seq] == f"g{n:06d}" for n, seq in got.items())  # each its own slot


def test_concurrent_batching_writers_get_unique_gap_free_sequence_numbers(
    ledger_env: LedgerEnv,
) -> None:
    # Three "processes" (separate trails and hints), each with three threads appending
    # one at a time (group commit forms batches) and one thread appending in batches.
    trails = [LedgerTrail(table(ledger_env)) for _ in range(3)]
    got: list[tuple[int, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    singles, bulk = 8, 25

    def single(p: int, t: int) -> None:
        try:
            for n in range(singles):
                ident = 10_000 * p + 100 * t + n
                r = trails[p].append(event(ident))
                with lock:
                    got.append((r.leaf_index or 0, f"g{ident:06d}"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def batched(p: int) -> None:
        try:
            events = [event(10_000 * p + 5_000 + n) for n in range(bulk)]
            for r, e in zip(trails[p].append_many(events), events, strict=True):
                with lock:
                    got.append((r.leaf_index or 0, (e.resource or "").removeprefix("Group::")))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=single, args=(p, t)) for p in range(3) for t in range(3)]
    threads += [threading.Thread(target=batched, args=(p,)) for p in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    total = 3 * 3 * singles + 3 * bulk
    assert sorted(seq for seq, _ in got) == list(range(total))  # unique receipts, no gap
    stored = resources(ledger_env)
    assert sorted(stored) == list(range(total))  # stored: exactly 0 .. N-1
    # Every receipt names the slot holding its own event: nothing lost, nothing doubled.
    assert all(stored[seq] == ident for seq, ident in got)
    assert len(set(stored.values())) == total
    assert sum(t.batches for t in trails) < total  # batches formed


def test_a_batch_on_a_hint_past_the_tail_cannot_commit_a_gap(ledger_env: LedgerEnv) -> None:
    trail = LedgerTrail(table(ledger_env))
    trail.append(event(0))
    trail._observed(5)  # a hint past the tail (as after a restored table)
    got = trail.append_many([event(1), event(2), event(3)])
    # The ConditionCheck on entry n-1 refused slots 5..7; the trail re-read the tail.
    assert [r.leaf_index for r in got] == [1, 2, 3]
    assert sorted(resources(ledger_env)) == [0, 1, 2, 3]


def test_a_batch_on_a_stale_hint_never_overwrites_an_entry(ledger_env: LedgerEnv) -> None:
    first = LedgerTrail(table(ledger_env))
    first.append_many([event(i) for i in range(3)])
    other = LedgerTrail(table(ledger_env))
    other._observed(1)  # another process last saw the log at size 1
    got = other.append_many([event(100), event(101)])
    assert [r.leaf_index for r in got] == [3, 4]
    assert resources(ledger_env) == {
        0: "g000000",
        1: "g000001",
        2: "g000002",
        3: "g000100",
        4: "g000101",
    }


def test_an_unfit_event_fails_its_own_append_only(ledger_env: LedgerEnv) -> None:
    trail = LedgerTrail(table(ledger_env))
    bad = AuditEvent(
        action="Teleport", outcome=Outcome.ALLOW, reason="x", actor=SUB, resource="Group::g"
    )
    with pytest.raises(InvalidEntry):
        trail.append_many([event(0), bad])
    assert resources(ledger_env) == {}  # nothing of the batch was written
    got: dict[str, object] = {}

    def writer(name: str, e: AuditEvent) -> None:
        try:
            got[name] = trail.append(e).leaf_index
        except InvalidEntry as exc:
            got[name] = exc

    with trail._turn:
        threads = [
            threading.Thread(target=writer, args=("good", event(7))),
            threading.Thread(target=writer, args=("bad", bad)),
        ]
        for th in threads:
            th.start()
        while len(trail._waiting) < 2:
            time.sleep(0.005)
    for th in threads:
        th.join()
    assert got["good"] == 0 and isinstance(got["bad"], InvalidEntry)
    assert resources(ledger_env) == {0: "g000007"}


def test_batched_entries_prove_and_verify_like_single_ones(ledger_env: LedgerEnv) -> None:
    ledger = ledger_env.ledger()
    ledger.trail.append(event(0))
    ledger.trail.append_many([event(i) for i in range(1, 120)])
    head = ledger.integrate()
    assert head is not None and head.size == 120
    reference = MerkleLog()
    for _, raw in sorted(table(ledger_env).all_entries().items()):
        reference.append(raw)
    assert reference.root() == head.root
    snapshot = snapshot_from_deployment(
        ledger_env.dynamodb, ledger_env.s3, ledger_env.table_name, ledger_env.bucket
    )
    assert ledger.sequencer is not None
    report = verify_snapshot(snapshot, load_public_key(ledger.sequencer.signer.public_key_pem()))
    assert report.ok, report.findings


def test_batching_can_be_switched_off(ledger_env: LedgerEnv) -> None:
    trail = LedgerTrail(table(ledger_env), batch_max=1)
    trail.append_many([event(i) for i in range(4)])
    assert trail.batches == 4  # one conditional PutItem each
    with pytest.raises(ValueError, match="batch_max"):
        LedgerTrail(table(ledger_env), batch_max=100)


def test_the_day_index_spreads_over_shards_and_still_lists_every_entry_once(
    ledger_env: LedgerEnv,
) -> None:
    from app.ledger.service import EntryQuery
    from app.ledger.store import DAY_SHARDS, index_key

    ledger = ledger_env.ledger()
    ledger.trail.append_many([event(i) for i in range(25)])
    head = ledger.integrate()
    assert head is not None and head.size == 25
    entries = table(ledger_env).all_entries()
    day = AuditEntry.from_bytes(entries[0]).timestamp.date().isoformat()
    ts = {seq: AuditEntry.from_bytes(raw).timestamp_ms for seq, raw in entries.items()}
    ddb, name = ledger_env.dynamodb, ledger_env.table_name
    used = {
        k
        for k in range(DAY_SHARDS)
        if ddb.query(
            TableName=name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"LEDGER#BY#DAY#{day}#{k}"}},
        )["Items"]
    }
    assert len(used) == DAY_SHARDS  # 25 entries over all 8 keys, no single hot key
    # Entry 24 as a row written before the split: under the day itself.
    ddb.delete_item(TableName=name, Key=index_key("DAY", f"{day}#{24 % DAY_SHARDS}", ts[24], 24))
    table(ledger_env).write_index([("DAY", day, ts[24], 24, entries[24])])
    listed = ledger.entries(EntryQuery(since_ms=min(ts.values()), limit=100))
    assert [e.leaf_index for e in listed] == sorted(ts, key=lambda s: (ts[s], s))
    assert len(listed) == 25
    # A limit takes the oldest first across the shards.
    first = ledger.entries(EntryQuery(since_ms=min(ts.values()), limit=7))
    assert [e.leaf_index for e in first] == [e.leaf_index for e in listed[:7]]


def test_a_listing_without_filters_skips_the_days_before_the_ledgers_first_entry(
    ledger_env: LedgerEnv,
) -> None:
    """The default listing reads a week of day-index keys, DAY_SHARDS + 1 queries a day.
    On a young ledger most of those days are empty: it starts the day before the first
    entry (a day's slack, as an entry appended later by another instance may carry an
    earlier time than the first), and still lists every entry."""
    from datetime import UTC, datetime, timedelta

    from app.ledger.service import EntryQuery
    from app.ledger.store import DAY_SHARDS

    first = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0)
    first -= timedelta(days=2)
    times = [first, first - timedelta(hours=2)]  # the second: the previous day, 23:00
    times += [first + timedelta(minutes=k) for k in range(1, 5)]
    ledger = ledger_env.ledger()
    ledger.trail.append_many([replace(event(i), at=at) for i, at in enumerate(times)])
    assert ledger.integrate() is not None
    queries: list[str] = []
    real = ledger.table.iter_index

    def counting(facet: str, value: str, *args: object, **kwargs: object) -> object:
        queries.append(value)
        return real(facet, value, *args, **kwargs)  # type: ignore[arg-type]

    ledger.table.iter_index = counting  # type: ignore[method-assign]
    listed = ledger.entries(EntryQuery(limit=100))
    order = sorted(range(len(times)), key=lambda i: times[i])
    assert [e.leaf_index for e in listed] == order  # the earlier-timed entry 1 included
    # From the day before the first entry to today: 4 days, not the 8 of a full week.
    assert len(queries) <= 4 * (DAY_SHARDS + 1)
    assert min(q.split("#")[0] for q in queries) == (first - timedelta(days=1)).date().isoformat()


def test_inline_mode_signs_only_when_no_stored_head_covers_the_response(
    ledger_env: LedgerEnv,
) -> None:
    """Under load most responses find their entries covered by a head another instance
    signed: they must not call KMS Sign again (its request quota would cap the hub)."""
    ledger = ledger_env.ledger()
    ledger.inline = True
    assert ledger.sequencer is not None
    signer = ledger.sequencer.signer
    signs: list[bytes] = []
    real_sign = signer.sign

    def counting(message: bytes) -> bytes:
        signs.append(message)
        return real_sign(message)

    signer.sign = counting  # type: ignore[method-assign]
    first = ledger.trail.append(event(0)).leaf_index or 0
    head = ledger.response_head(first)
    assert head is not None and head.size == 1 and len(signs) == 1
    # Another instance appends and integrates two entries; this one's receipt is covered.
    other = ledger_env.ledger()
    mine = ledger.trail.append(event(1)).leaf_index or 0
    other.trail.append(event(2))
    other.integrate()
    other.trail.append(event(3))  # waiting, as others' entries always are under load
    covered = ledger.response_head(mine)
    assert covered is not None and covered.size == 3 > mine
    assert len(signs) == 1  # no new signature for an already covered receipt
    # Not covered yet: integrated and signed before the response.
    last = ledger.trail.append(event(4)).leaf_index or 0
    fresh = ledger.response_head(last)
    assert fresh is not None and fresh.size == 5 and len(signs) == 2


def test_a_starved_append_is_a_clear_retryable_503() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from app.errors import install_error_handlers
    from app.ledger.errors import LedgerBusy
    from app.ledger.router import install_ledger_error_handlers

    app = FastAPI()
    install_error_handlers(app)
    install_ledger_error_handlers(app)

    @app.get("/act")
    def act() -> None:
        raise LedgerBusy()

    got = TestClient(app, raise_server_exceptions=False).get("/act")
    assert got.status_code == 503 and got.headers["retry-after"] == "1"
    assert got.json()["error"]["code"] == "ledger_busy"


def test_a_response_queued_behind_an_integration_that_covered_it_signs_nothing(
    ledger_env: LedgerEnv,
) -> None:
    ledger = ledger_env.ledger()
    ledger.inline = True
    sequencer = ledger.sequencer
    assert sequencer is not None
    signs: list[bytes] = []
    real_sign = sequencer.signer.sign

    def counting(message: bytes) -> bytes:
        signs.append(message)
        return real_sign(message)

    sequencer.signer.sign = counting  # type: ignore[method-assign]

    class SpyLock:
        """The sequencer's lock, telling when a caller starts waiting for it."""

        def __init__(self) -> None:
            self.real = threading.Lock()
            self.waiting = threading.Event()

        def __enter__(self) -> None:
            self.waiting.set()
            self.real.acquire()

        def __exit__(self, *exc: object) -> None:
            self.real.release()

    spy = SpyLock()
    sequencer._lock = spy  # type: ignore[assignment]
    mine = ledger.trail.append(event(0)).leaf_index or 0
    got: list[object] = []
    with spy.real:  # an integration of this process is under way
        waiter = threading.Thread(target=lambda: got.append(ledger.response_head(mine)))
        waiter.start()
        assert spy.waiting.wait(10)
        # Meanwhile another instance integrates (covering ours) and more entries arrive.
        other = ledger_env.ledger()
        other.integrate()
        other.trail.append(event(1))
    waiter.join()
    [head] = got
    assert isinstance(head, SignedTreeHead) and head.size == 1 > mine
    assert signs == []  # covered while it waited: no integration, no signature
