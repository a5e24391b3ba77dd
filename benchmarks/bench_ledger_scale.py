"""Benchmark of the ledger's sequencing ceiling: audited actions per second on one trail.

Every audited action stores one entry at the tail of one gap-free sequence, so a trail's
ceiling is how many entries one round trip to the tail sequences. One run, one moto
server on loopback (in this process, DynamoDB serialised as in
``infra/emulator/dynamodb_isolation.py``), a fresh table per variant, variants measured
round-robin and the median of ``--runs`` reported, each against the baseline of the same
run:

- **PutItem floor**: bare, sequential ``PutItem`` of an item of the entry's size (the
  transport; the baseline every ratio is against);
- **append, 1 writer**: ``LedgerTrail.append``, one conditional ``PutItem`` per entry
  (today's per-entry cost);
- **append, W processes**: W trails with their own hints (separate processes, like
  Lambda environments, which serve one request each), one thread each, batching off:
  they contend for the tail; more writers do not raise the ceiling (an append that
  keeps losing gets ``LedgerBusy``, the API's retryable 503, and is retried up to 3
  times here; their count is reported);
- **group commit, T threads**: one trail, T threads appending one entry at a time;
  waiting appends share one ``TransactWriteItems`` (up to 99 entries + the
  ``ConditionCheck`` on ``n - 1``);
- **append_many, batches of 99**: one writer handing batches (the per-round-trip ceiling
  of batched sequencing);
- **TransactWriteItems floor**: bare transactions of 99 puts (each conditional on its
  slot being free) + 1 condition check, of the same sizes (the transport of a batch);
- **integrate**: the sequencer's rate over the batched entries (nodes, KMS-signed head,
  checkpoint, index rows): heads must keep up with appends.

- **Lambda-like, N trails**: W "environments" (separate writers with their own hints,
  one thread each, like Lambda environments serving one request at a time), one entry
  per request, batching off, events from many actors spread over N trails
  (:class:`~app.ledger.trail.ShardedTrail`) for N in ``--trails`` (1, 2, 4, 8): the
  deployed path, where batches never form and only more tails raise the ceiling.
  ``--latency-ms`` adds a fixed delay before every DynamoDB request (outside moto's
  lock), to model an in-Region round trip; 0 by default (moto's own cost only).

After each batched variant the stored sequence numbers are checked to be exactly
``0 .. N-1`` (gap-free, unique), so a figure never comes from a broken ledger.

Run: ``.venv/bin/python -m benchmarks ledger_scale [--n 600] [--runs 3] [--threads 16]
[--trails 1,2,4,8] [--lambda-writers 16] [--latency-ms 0] [--lambda-only]``.
The machine is shared (2 cores): quote the ratios, not the absolute rates.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

TARGET_PER_S = 1000.0
SUB = "0b6f7c1e-2d3a-4c5b-8e9f-0123456789ab"


def _event(i: int, actor: str = SUB) -> Any:
    from app.audit.events import AuditEvent, Outcome

    return AuditEvent(
        action="ViewRecord",
        outcome=Outcome.ALLOW,
        reason="member-reads-shared-record",
        actor=actor,
        actor_reg_no="M20001",
        institution="harbour-cardiac-alliance",
        resource=f"Record::r{i:08d}",
        patient_ref="pt1-" + "a" * 64,
        actor_roles=("doctor",),
    )


class _Env:
    def __init__(self, endpoint: str):
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(region_name="ap-east-1")
        self.ddb = session.client(
            "dynamodb",
            endpoint_url=endpoint,
            config=Config(max_pool_connections=64),
        )
        self.s3 = session.client("s3", endpoint_url=endpoint)
        self.kms = session.client("kms", endpoint_url=endpoint)
        self.key = self.kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")[
            "KeyMetadata"
        ]["Arn"]
        self._n = 0

    def table(self) -> str:
        self._n += 1
        name = f"bench-scale-{self._n}-{time.monotonic_ns()}"
        self.ddb.create_table(
            TableName=name,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        return name


def _check_gap_free(env: _Env, table: str, expected: int) -> None:
    from app.ledger.store import LedgerTable

    stored = sorted(LedgerTable(env.ddb, table).all_entries())
    if stored != list(range(expected)):
        raise SystemExit(f"ledger broken: {len(stored)} entries stored, expected 0..{expected - 1}")


def _threads(n: int, target: Callable[[int], None]) -> float:
    threads = [threading.Thread(target=target, args=(k,)) for k in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def lambda_like(env: _Env, n: int, trails: int, writers: int) -> tuple[float, float]:
    """Entries per second and retryable ``ledger_busy`` answers: W environments, one entry
    per request, no batching, over ``trails`` trails; every trail checked gap-free."""
    from app.ledger.errors import LedgerBusy
    from app.ledger.store import LedgerTable
    from app.ledger.trail import LedgerTrail, ShardedTrail

    t = env.table()
    base = LedgerTable(env.ddb, t)
    environments = [
        ShardedTrail([LedgerTrail(base.for_trail(k), batch_max=1) for k in range(trails)])
        for _ in range(writers)
    ]
    # Many doctors: actors spread over the trails by the service's own stable hash.
    events = [_event(i, f"0b6f7c1e-2d3a-4c5b-8e9f-{i % 997:012d}") for i in range(n)]
    per = n // writers
    busy = [0] * writers

    def environment(k: int) -> None:
        for i in range(per):
            for _attempt in range(3):  # as a client retries a 503 ledger_busy
                try:
                    environments[k].append(events[k * per + i])
                    break
                except LedgerBusy:
                    busy[k] += 1

    elapsed = _threads(writers, environment)
    stored = 0
    for k in range(trails):
        got = sorted(base.for_trail(k).all_entries())
        if got != list(range(len(got))):
            raise SystemExit(f"trail {k} broken: {len(got)} entries not 0..{len(got) - 1}")
        stored += len(got)
    return stored / elapsed, float(sum(busy))


def _floor(env: _Env, n: int, size: int) -> float:
    t = env.table()
    for i in range(20):  # warm-up: connections, moto's routing cache
        env.ddb.get_item(TableName=t, Key={"pk": {"S": "WARM"}, "sk": {"S": str(i)}})
    t0 = time.perf_counter()
    for i in range(n):
        env.ddb.put_item(
            TableName=t,
            Item={
                "pk": {"S": f"FLOOR#{i >> 10}"},
                "sk": {"S": f"{i:012d}"},
                "entry": {"B": b"x" * size},
                "seq": {"N": str(i)},
            },
        )
    return n / (time.perf_counter() - t0)


def run_lambda(env: _Env, n: int, trail_counts: Sequence[int], writers: int) -> dict[str, float]:
    from app.ledger.trail import entry_for

    size = len(entry_for(_event(0), 0).to_bytes())
    out: dict[str, float] = {"putitem_floor": _floor(env, n, size), "entry_bytes": float(size)}
    for trails in trail_counts:
        rate, busy = lambda_like(env, n, trails, writers)
        out[f"lambda_{trails}_trails"] = rate
        out[f"lambda_{trails}_trails_busy"] = busy
    return out


def run_once(env: _Env, n: int, writers: int, threads: int) -> dict[str, float]:
    from app.ledger.errors import LedgerBusy
    from app.ledger.service import build_ledger
    from app.ledger.store import LedgerTable
    from app.ledger.trail import BATCH_MAX, LedgerTrail, entry_for

    size = len(entry_for(_event(0), 0).to_bytes())
    out: dict[str, float] = {}
    events = [_event(i) for i in range(n)]

    # Baseline: bare PutItem of the same size.
    t = env.table()
    for i in range(20):  # warm-up: connections, moto's routing cache
        env.ddb.get_item(TableName=t, Key={"pk": {"S": "WARM"}, "sk": {"S": str(i)}})
    t0 = time.perf_counter()
    for i in range(n):
        env.ddb.put_item(
            TableName=t,
            Item={
                "pk": {"S": f"FLOOR#{i >> 10}"},
                "sk": {"S": f"{i:012d}"},
                "entry": {"B": b"x" * size},
                "seq": {"N": str(i)},
            },
        )
    out["putitem_floor"] = n / (time.perf_counter() - t0)

    # Today's path: one conditional PutItem per entry, one writer.
    t = env.table()
    trail = LedgerTrail(LedgerTable(env.ddb, t), batch_max=1)
    t0 = time.perf_counter()
    for e in events:
        trail.append(e)
    out["append_1_writer"] = n / (time.perf_counter() - t0)
    _check_gap_free(env, t, n)

    # W processes (own hints), batching off: contention for one tail.
    t = env.table()
    trails = [LedgerTrail(LedgerTable(env.ddb, t), batch_max=1) for _ in range(writers)]
    per = n // writers

    busy = [0] * writers

    def process(k: int) -> None:
        for i in range(per):
            for _attempt in range(3):  # as a client retries a 503 ledger_busy
                try:
                    trails[k].append(events[k * per + i])
                    break
                except LedgerBusy:
                    busy[k] += 1

    elapsed = _threads(writers, process)
    stored = len(LedgerTable(env.ddb, t).all_entries())
    out[f"append_{writers}_processes"] = stored / elapsed
    out["busy_answers"] = float(sum(busy))
    _check_gap_free(env, t, stored)

    # Group commit: one trail, T threads appending one at a time.
    t = env.table()
    grouped = LedgerTrail(LedgerTable(env.ddb, t))
    per_t = n // threads

    def thread(k: int) -> None:
        for i in range(per_t):
            grouped.append(events[k * per_t + i])

    out[f"group_commit_{threads}_threads"] = threads * per_t / _threads(threads, thread)
    out["group_commit_mean_batch"] = threads * per_t / max(1, grouped.batches)
    _check_gap_free(env, t, threads * per_t)

    # Batches of 99 from one writer, and the signed integration of what they stored.
    t = env.table()
    env.s3.create_bucket(Bucket=t, CreateBucketConfiguration={"LocationConstraint": "ap-east-1"})
    ledger = build_ledger(
        env.ddb, t, kms=env.kms, s3=env.s3, signing_key_arn=env.key, checkpoint_bucket=t
    )
    t0 = time.perf_counter()
    ledger.trail.append_many(events)
    out["append_many_99"] = n / (time.perf_counter() - t0)
    _check_gap_free(env, t, n)
    t0 = time.perf_counter()
    head = ledger.integrate()
    out["integrate"] = n / (time.perf_counter() - t0)
    assert head is not None and head.size == n

    # Bare TransactWriteItems of the same shape (99 puts + 1 condition check).
    t = env.table()
    ddb: Any = env.ddb
    ddb.put_item(TableName=t, Item={"pk": {"S": "CHECK"}, "sk": {"S": "x"}})
    t0 = time.perf_counter()
    for start in range(0, n, BATCH_MAX):
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": t,
                    "Item": {
                        "pk": {"S": f"FLOOR#{i >> 10}"},
                        "sk": {"S": f"{i:012d}"},
                        "entry": {"B": b"x" * size},
                        "seq": {"N": str(i)},
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for i in range(start, min(n, start + BATCH_MAX))
        ]
        items.append(
            {
                "ConditionCheck": {
                    "TableName": t,
                    "Key": {"pk": {"S": "CHECK"}, "sk": {"S": "x"}},
                    "ConditionExpression": "attribute_exists(pk)",
                }
            }
        )
        ddb.transact_write_items(TransactItems=items)
    out["transact_floor_99"] = n / (time.perf_counter() - t0)
    out["entry_bytes"] = float(size)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=600, help="entries per variant per run")
    parser.add_argument("--runs", type=int, default=3, help="runs (medians reported)")
    parser.add_argument("--writers", type=int, default=4, help="competing processes")
    parser.add_argument("--threads", type=int, default=16, help="threads sharing one trail")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument(
        "--trails", default="1,2,4,8", help="trail counts of the Lambda-like variant"
    )
    parser.add_argument(
        "--lambda-writers", type=int, default=16, help="environments in the Lambda-like variant"
    )
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay before each DynamoDB request"
    )
    parser.add_argument(
        "--lambda-only", action="store_true", help="only the baseline and Lambda-like variants"
    )
    args = parser.parse_args(argv)
    trail_counts = [int(x) for x in args.trails.split(",") if x.strip()]
    if not trail_counts or any(not 1 <= k <= 64 for k in trail_counts):
        parser.error("--trails takes trail counts between 1 and 64, comma-separated")

    from infra.emulator.server import default_emulator_credentials, start_moto_server

    default_emulator_credentials()
    server, endpoint = start_moto_server()
    try:
        env = _Env(endpoint)
        if args.latency_ms > 0:
            delay = args.latency_ms / 1000

            def _wait(**_: Any) -> None:
                time.sleep(delay)  # an in-Region round trip, outside moto's lock

            env.ddb.meta.events.register("before-send.dynamodb.*", _wait)
        runs = []
        for _ in range(args.runs):
            run = run_lambda(env, args.n, trail_counts, args.lambda_writers)
            if not args.lambda_only:
                run.update(run_once(env, args.n, args.writers, args.threads))
            runs.append(run)
    finally:
        server.stop()
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    floor = med["putitem_floor"]
    _print_lambda(args, med, trail_counts, floor)
    if args.lambda_only:
        if args.json:
            print(json.dumps({"medians": med, "runs": runs}, indent=2))
        best = max(med[f"lambda_{k}_trails"] for k in trail_counts)
        return 0 if best >= TARGET_PER_S else 1
    print(
        f"ledger sequencing on a moto server (loopback, in-process), {args.n} entries of "
        f"{med['entry_bytes']:.0f} B per variant, median of {args.runs} runs:"
    )
    rows = [
        ("bare PutItem (baseline)", "putitem_floor"),
        ("append, 1 writer (cond. PutItem)", "append_1_writer"),
        (f"append, {args.writers} processes, no batching", f"append_{args.writers}_processes"),
        (f"group commit, {args.threads} threads", f"group_commit_{args.threads}_threads"),
        ("append_many, batches of 99", "append_many_99"),
        ("bare TransactWriteItems of 99 cond. puts+1", "transact_floor_99"),
        ("Sequencer.integrate (signed)", "integrate"),
    ]
    for label, key in rows:
        print(f"  {label:<42} {med[key]:>9,.0f} /s  {med[key] / floor:5.2f}x baseline")
    print(f"  group commit: mean batch {med['group_commit_mean_batch']:.1f} entries")
    print(
        f"  {args.writers} competing processes in a tight loop: "
        f"{med['busy_answers']:.0f} retryable ledger_busy answers (median per run)"
    )
    batched = med["append_many_99"]
    print(
        f"  append_many vs bare TransactWriteItems of the same shape: "
        f"{batched / med['transact_floor_99']:.2f}x"
    )
    best = max(med[f"group_commit_{args.threads}_threads"], batched)
    verdict = "ok" if best >= TARGET_PER_S else "MISSED"
    print(f"  target >= {TARGET_PER_S:,.0f} audited actions/s on one trail: {verdict}")
    if args.json:
        print(json.dumps({"medians": med, "runs": runs}, indent=2))
    return 0 if best >= TARGET_PER_S else 1


def _print_lambda(
    args: argparse.Namespace, med: dict[str, float], trail_counts: Sequence[int], floor: float
) -> None:
    print(
        f"Lambda-like: {args.lambda_writers} environments, one entry per request, no "
        f"batching, {args.n} entries of {med['entry_bytes']:.0f} B, median of {args.runs} "
        f"runs, latency {args.latency_ms:g} ms a request:"
    )
    one = med[f"lambda_{trail_counts[0]}_trails"]
    print(f"  {'bare PutItem, sequential (baseline)':<42} {floor:>9,.0f} /s   1.00x baseline")
    for k in trail_counts:
        rate = med[f"lambda_{k}_trails"]
        print(
            f"  {f'{k} trail(s)':<42} {rate:>9,.0f} /s  {rate / floor:5.2f}x baseline  "
            f"{rate / one:5.2f}x {trail_counts[0]} trail(s)  "
            f"busy {med[f'lambda_{k}_trails_busy']:.0f}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
