"""Benchmark of the in-memory audit-ledger tree (app/ledger/merkle.py).

Measures, in one run:

1. Append throughput of :class:`MerkleLog` against pymerkle's ``InmemoryTree`` on the same
   entries (target: ratio >= 1x). pymerkle keeps its root current on every append, while
   our log computes roots on demand, so a second figure times our append *plus* a fresh
   root after every append: the like-for-like comparison. Variants run round-robin and
   repeated; medians are reported because the machine is shared.
2. At n = 10**6 leaves: build time and resident-memory growth; inclusion-proof generation
   and verification per call (target: verify median <= 50 us, proofs <= 2*log2(n) hashes);
   consistency-proof generation and verification.

3. Durable append throughput against a moto server on loopback (the emulator; moto's
   DynamoDB serialised as in ``infra/emulator/dynamodb_isolation.py``): the ledger
   trail's ``append`` (one conditional PutItem) and ``transact_append`` (one
   TransactWriteItems with a caller item, the entry and the ConditionCheck), sequential
   and with 4 writer threads, against a bare PutItem of an item of the same size (the
   transport floor, same run); and the sequencer's integration rate (nodes, signed head,
   checkpoint, index rows per batch). A fresh table per run; medians of ``--durable-runs``.
   moto's transactions deep-copy the table, so ``transact_append`` on the emulator slows
   as the table grows: a property of moto, not of DynamoDB.

Run: ``.venv/bin/python -m benchmarks.bench_ledger`` (or ``python -m benchmarks ledger``).
``--n`` and ``--append-n`` shrink the sizes for a quick look. Benchmark-only dependency:
``pymerkle`` (also a test dependency).
"""

from __future__ import annotations

import argparse
import functools
import gc
import hashlib
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from app.ledger.merkle import (
    MerkleLog,
    consistency_proof_length,
    inclusion_proof_length,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

TARGET_APPEND_RATIO = 1.0
TARGET_VERIFY_MEDIAN_US = 50.0


def _entries(count: int) -> list[bytes]:
    # Shaped like canonical audit entries (~330 bytes of ASCII JSON), synthetic identifiers.
    template = (
        '{{"action":"read","actor":{{"institution_id":"harbour-cardiac-alliance",'
        '"mchk_reg_no":"M{reg:05d}","roles":["doctor"],'
        '"sub":"0b7c7f0e-1f7a-4c1e-9f3e-{sub:012x}"}},"outcome":"success",'
        '"reason":"group-member","request_id":"req-{seq:010d}",'
        '"resource":{{"id":"rec-{seq:010d}","type":"record"}},"sequence":{seq},'
        '"timestamp_ms":{ts},"version":1}}'
    )
    return [
        template.format(reg=i % 99999, sub=i, seq=i, ts=1795599000000 + i).encode()
        for i in range(count)
    ]


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _time(fn: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --- 1. append throughput ------------------------------------------------------------------


def _append_ours(entries: Sequence[bytes]) -> None:
    log = MerkleLog()
    append = log.append
    for e in entries:
        append(e)


def _append_ours_with_root(entries: Sequence[bytes]) -> None:
    log = MerkleLog()
    append, current_root = log.append, log.root
    for e in entries:
        append(e)
        current_root()


def _append_pymerkle(entries: Sequence[bytes]) -> None:
    import pymerkle  # type: ignore[import-untyped]

    tree = pymerkle.InmemoryTree(algorithm="sha256")
    append = tree.append_entry
    for e in entries:
        append(e)


def bench_append(count: int, repeats: int) -> dict[str, Any]:
    import pymerkle

    entries = _entries(count)
    variants = {
        "ours": _append_ours,
        "ours+root": _append_ours_with_root,
        "pymerkle": _append_pymerkle,
    }
    # Same leaves, same roots: the comparison is between equivalent trees.
    check = MerkleLog()
    for e in entries[:1000]:
        check.append(e)
    reference = pymerkle.InmemoryTree(algorithm="sha256")
    for e in entries[:1000]:
        reference.append_entry(e)
    assert check.root() == reference.get_root(), "pymerkle and MerkleLog disagree"

    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            times[name].append(_time(functools.partial(fn, entries)))
    med = {name: statistics.median(t) for name, t in times.items()}
    rate = {name: count / m for name, m in med.items()}
    return {
        "entries": count,
        "repeats": repeats,
        "appends_per_s": rate,
        "ratio_vs_pymerkle": rate["ours"] / rate["pymerkle"],
        "ratio_with_root_vs_pymerkle": rate["ours+root"] / rate["pymerkle"],
        "pymerkle_version": pymerkle.__version__,
    }


# --- 2. proofs at n leaves -----------------------------------------------------------------


def _per_call_us(fn: Callable[[int], object], args: Sequence[int]) -> list[float]:
    out = []
    clock = time.perf_counter_ns
    for a in args:
        t0 = clock()
        fn(a)
        out.append((clock() - t0) / 1000)
    return out


def bench_proofs(n: int, samples: int, seed: int = 9162) -> dict[str, Any]:
    rng = random.Random(seed)
    gc.collect()
    rss_before = _rss_kib()
    leaves = [leaf_hash(i.to_bytes(8, "big")) for i in range(n)]
    rss_leaves = _rss_kib()
    log = MerkleLog()
    t0 = time.perf_counter()
    append = log.append_leaf_hash
    for h in leaves:
        append(h)
    build_s = time.perf_counter() - t0
    rss_after = _rss_kib()
    tree_root = log.root()

    indices = [rng.randrange(n) for _ in range(samples)]
    proofs = {i: log.inclusion_proof(i) for i in indices}
    gen_us = _per_call_us(log.inclusion_proof, indices)

    def verify(i: int) -> None:
        verify_inclusion(leaves[i], i, n, proofs[i], tree_root)

    # The floor on this machine: the same number of bare SHA-256 calls, timed the same way
    # and interleaved with the verifications so that both see the same machine load.
    def hash_floor(i: int) -> None:
        acc = leaves[i]
        for p in proofs[i]:
            acc = hashlib.sha256(b"\x01" + p + acc).digest()

    ver_us, floor_us = [], []
    for i in indices:
        ver_us += _per_call_us(verify, [i])
        floor_us += _per_call_us(hash_floor, [i])
    max_len = max(len(p) for p in proofs.values())
    assert all(len(p) == inclusion_proof_length(i, n) for i, p in proofs.items())

    old_sizes = [rng.randrange(1, n) for _ in range(samples)]
    old_roots = {m: log.root(m) for m in old_sizes}
    cproofs = {m: log.consistency_proof(m) for m in old_sizes}
    cgen_us = _per_call_us(log.consistency_proof, old_sizes)

    def cverify(m: int) -> None:
        verify_consistency(m, n, cproofs[m], old_roots[m], tree_root)

    cver_us = _per_call_us(cverify, old_sizes)
    cmax_len = max(len(p) for p in cproofs.values())
    assert all(len(p) == consistency_proof_length(m, n) for m, p in cproofs.items())

    bound = 2 * math.log2(n)
    return {
        "n": n,
        "samples": samples,
        "build_s": build_s,
        "build_appends_per_s": n / build_s,
        "tree_rss_mib": (rss_after - rss_leaves) / 1024,
        "leaf_list_rss_mib": (rss_leaves - rss_before) / 1024,
        "inclusion_gen_median_us": statistics.median(gen_us),
        "inclusion_verify_median_us": statistics.median(ver_us),
        "inclusion_verify_p99_us": sorted(ver_us)[int(0.99 * len(ver_us))],
        "inclusion_hash_floor_median_us": statistics.median(floor_us),
        "inclusion_max_hashes": max_len,
        "consistency_gen_median_us": statistics.median(cgen_us),
        "consistency_verify_median_us": statistics.median(cver_us),
        "consistency_max_hashes": cmax_len,
        "proof_hash_bound_2log2n": bound,
    }


def _report(append: dict[str, Any], proofs: dict[str, Any]) -> bool:
    ok: bool = True
    rate = append["appends_per_s"]
    print(f"append throughput, {append['entries']} entries, median of {append['repeats']}:")
    print(f"  MerkleLog.append          {rate['ours']:>12,.0f} /s")
    print(f"  MerkleLog.append + root() {rate['ours+root']:>12,.0f} /s")
    print(f"  pymerkle {append['pymerkle_version']:<8} append    {rate['pymerkle']:>12,.0f} /s")
    ratio, ratio_root = append["ratio_vs_pymerkle"], append["ratio_with_root_vs_pymerkle"]
    verdict = "ok" if ratio_root >= TARGET_APPEND_RATIO else "MISSED"
    print(f"  ratio vs pymerkle: {ratio:.2f}x (append), {ratio_root:.2f}x (append + root)")
    print(f"  target >= {TARGET_APPEND_RATIO:.1f}x: {verdict}")
    ok &= ratio_root >= TARGET_APPEND_RATIO

    n = proofs["n"]
    print(f"\nproofs at n = {n:,} ({proofs['samples']} random samples each):")
    print(
        f"  build {proofs['build_s']:.2f} s ({proofs['build_appends_per_s']:,.0f} appends/s), "
        f"tree memory {proofs['tree_rss_mib']:.0f} MiB RSS "
        f"(+{proofs['leaf_list_rss_mib']:.0f} MiB for the benchmark's own leaf list)"
    )
    print(f"  inclusion  generate median {proofs['inclusion_gen_median_us']:8.1f} us")
    v = proofs["inclusion_verify_median_us"]
    print(
        f"  inclusion  verify   median {v:8.1f} us (p99 {proofs['inclusion_verify_p99_us']:.1f})"
        f"  target <= {TARGET_VERIFY_MEDIAN_US:.0f} us: "
        f"{'ok' if v <= TARGET_VERIFY_MEDIAN_US else 'MISSED'}"
    )
    print(
        f"  (bare SHA-256 over the same path, same timing: median "
        f"{proofs['inclusion_hash_floor_median_us']:.1f} us)"
    )
    print(f"  consistency generate median {proofs['consistency_gen_median_us']:7.1f} us")
    print(f"  consistency verify   median {proofs['consistency_verify_median_us']:7.1f} us")
    bound = proofs["proof_hash_bound_2log2n"]
    worst = max(proofs["inclusion_max_hashes"], proofs["consistency_max_hashes"])
    print(
        f"  longest proof: inclusion {proofs['inclusion_max_hashes']}, consistency "
        f"{proofs['consistency_max_hashes']} hashes; bound 2*log2(n) = {bound:.1f}: "
        f"{'ok' if worst <= bound else 'MISSED'}"
    )
    ok &= v <= TARGET_VERIFY_MEDIAN_US and worst <= bound
    return ok


def _durable_env(endpoint: str) -> dict[str, Any]:
    import boto3

    session = boto3.session.Session(region_name="ap-east-1")
    kms = session.client("kms", endpoint_url=endpoint)
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    return {
        "dynamodb": session.client("dynamodb", endpoint_url=endpoint),
        "s3": session.client("s3", endpoint_url=endpoint),
        "kms": kms,
        "key": key,
    }


def _fresh_table(env: dict[str, Any], run: int) -> str:
    name = f"bench-ledger-{run}-{time.monotonic_ns()}"
    env["dynamodb"].create_table(
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
    env["s3"].create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "ap-east-1"}
    )
    return name


def bench_durable(count: int, runs: int) -> dict[str, Any]:
    """Entries/s of durable appends on a moto server (see the module docstring)."""
    import threading

    from app.audit.events import AuditEvent, Outcome
    from app.ledger.service import build_ledger
    from app.ledger.trail import entry_for
    from infra.emulator.server import default_emulator_credentials, start_moto_server

    default_emulator_credentials()
    server, endpoint = start_moto_server()
    try:
        env = _durable_env(endpoint)
        sub = "0b6f7c1e-2d3a-4c5b-8e9f-0123456789ab"

        def event(i: int) -> AuditEvent:
            return AuditEvent(
                action="ViewGroup",
                outcome=Outcome.ALLOW,
                reason="member-views-open-group",
                actor=sub,
                actor_reg_no="M20001",
                institution="harbour-cardiac-alliance",
                resource=f"Group::g{i:08d}",
                patient_ref="pt1-" + "a" * 64,
                actor_roles=("doctor",),
            )

        rates: dict[str, list[float]] = {
            k: [] for k in ("putitem_floor", "append", "append_4_threads", "transact", "integrate")
        }
        for run in range(runs):
            table = _fresh_table(env, run)
            ledger = build_ledger(
                env["dynamodb"],
                table,
                kms=env["kms"],
                s3=env["s3"],
                signing_key_arn=env["key"],
                checkpoint_bucket=table,
            )
            ddb = env["dynamodb"]
            size = len(entry_for(event(0), 0).to_bytes())
            ledger.trail.append(event(0))  # warm-up: finds the (empty) tail
            for i in range(20):  # warm-up: connections, moto's routing cache
                ddb.get_item(TableName=table, Key={"pk": {"S": "WARM"}, "sk": {"S": str(i)}})
            t0 = time.perf_counter()
            for i in range(count):
                ddb.put_item(
                    TableName=table,
                    Item={
                        "pk": {"S": f"FLOOR#{i >> 10}"},
                        "sk": {"S": f"{i:012d}"},
                        "entry": {"B": b"x" * size},
                        "seq": {"N": str(i)},
                    },
                )
            rates["putitem_floor"].append(count / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            for i in range(count):
                ledger.trail.append(event(i))
            rates["append"].append(count / (time.perf_counter() - t0))

            def writer(trail: Any, k: int) -> None:
                for i in range(count // 4):
                    trail.append(event(k * count + i))

            threads = [threading.Thread(target=writer, args=(ledger.trail, k)) for k in range(4)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            rates["append_4_threads"].append(4 * (count // 4) / (time.perf_counter() - t0))
            waiting = 1 + count + 4 * (count // 4)
            t0 = time.perf_counter()
            head = ledger.integrate()
            rates["integrate"].append(waiting / (time.perf_counter() - t0))
            assert head is not None and head.size == waiting
            # transact_append on its own fresh table: moto deep-copies every table a
            # transaction touches, so its cost grows with the table (DynamoDB's does not).
            small = _fresh_table(env, run + 1000)
            fresh = build_ledger(
                ddb, small, kms=env["kms"], signing_key_arn=env["key"], s3=env["s3"]
            )
            t0 = time.perf_counter()
            for i in range(count):
                own = {
                    "Put": {
                        "TableName": small,
                        "Item": {"pk": {"S": f"CHANGE#{i}"}, "sk": {"S": "x"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
                fresh.trail.transact_append(event(i), [own])
            rates["transact"].append(count / (time.perf_counter() - t0))
        return {
            "entries_per_run": count,
            "runs": runs,
            "entry_bytes": size,
            "per_s": {k: statistics.median(v) for k, v in rates.items()},
        }
    finally:
        server.stop()


def _report_durable(durable: dict[str, Any]) -> None:
    r = durable["per_s"]
    print(
        f"\ndurable append on a moto server (loopback), {durable['entries_per_run']} entries "
        f"of {durable['entry_bytes']} B per variant, median of {durable['runs']} runs:"
    )
    print(f"  bare PutItem, same size (floor)  {r['putitem_floor']:>9,.0f} /s")
    print(
        f"  LedgerTrail.append               {r['append']:>9,.0f} /s "
        f"({r['append'] / r['putitem_floor']:.2f}x the floor)"
    )
    print(f"  LedgerTrail.append, 4 threads    {r['append_4_threads']:>9,.0f} /s")
    print(f"  LedgerTrail.transact_append      {r['transact']:>9,.0f} /s")
    print(f"  Sequencer.integrate (signed)     {r['integrate']:>9,.0f} entries/s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_ledger", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10**6, help="leaves for the proof benchmark")
    parser.add_argument("--append-n", type=int, default=100_000, help="entries per append run")
    parser.add_argument("--repeats", type=int, default=5, help="append runs per variant")
    parser.add_argument("--samples", type=int, default=5000, help="proofs timed per kind")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--durable-n", type=int, default=400, help="entries per durable variant")
    parser.add_argument("--durable-runs", type=int, default=3, help="durable runs (median)")
    parser.add_argument("--skip-durable", action="store_true", help="in-memory figures only")
    parser.add_argument("--only-durable", action="store_true", help="durable figures only")
    args = parser.parse_args(argv)

    ok = True
    figures: dict[str, Any] = {}
    if not args.only_durable:
        figures["append"] = bench_append(args.append_n, args.repeats)
        figures["proofs"] = bench_proofs(args.n, args.samples)
        ok = _report(figures["append"], figures["proofs"])
    if not args.skip_durable:
        figures["durable"] = bench_durable(args.durable_n, args.durable_runs)
        _report_durable(figures["durable"])
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
