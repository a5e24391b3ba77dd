"""Faults under load at the ledger's transaction boundary: nothing lost, doubled or partial.

One moto server on loopback; 4 "processes" (trails with their own hints) x 2 threads
append audited changes the way the service does: ``transact_append(event, [the change])``
where the change is a ``Put`` conditional on its id being new (as groups and records
commit their change with its entry). Between the trails and DynamoDB a fault injector
(a client wrapper, per phase of the run) makes the emulator:

- **slow**: every call delayed 0-20 ms;
- **refusing**: 20 % of calls fail before reaching DynamoDB (``ServiceUnavailable``);
- **losing answers**: 10 % of calls reach DynamoDB and commit, then the answer is lost
  (``RequestTimeout`` to the caller: the nastiest case, the caller cannot know);
- **duplicate deliveries**: every 5th change is delivered twice (an outbox redelivering).

A caller that gets an error retries the same change (same id) up to 5 times; a retry
whose change is already there gets ``AuditedTransactionConflict`` (the 409 the service
answers), which the caller counts as done. Afterwards the heads are integrated and the
ledger verified (``hub audit verify``'s checks), and every change and entry is counted:

- **lost**: a change acknowledged (or conflicting: already there) without its item or
  without exactly one entry naming it;
- **duplicated**: a change with more than one entry, or an entry without a change;
- **partial**: a change item without its entry, or an entry without its change item;
- **gaps**: stored sequence numbers other than exactly ``0 .. N-1``;
- **unclear errors**: a failure the caller saw that is not a retryable AWS error code,
  ``LedgerBusy`` or ``AuditedTransactionConflict``.

All must be zero. Run: ``.venv/bin/python -m benchmarks faults [--changes 240]``.
This exercises the ledger and its transactions. ``--path http`` runs the faults through
the deployed request path instead (:mod:`benchmarks.faults_http`: a fault proxy between
the service and moto, the emulator restarted mid-run, a second sequencer SIGKILLed
mid-integration, doctors' clients through the local gateway).
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

RETRYABLE = {"ServiceUnavailable", "RequestTimeout", "ThrottlingException", "InternalServerError"}


class FaultyClient:
    """A DynamoDB client whose calls are slowed, refused or lose their answers."""

    def __init__(self, real: Any, seed: int):
        self.real = real
        self.mode = "none"
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()

    def _roll(self) -> float:
        with self._lock:
            return self._rng.random()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if not callable(attr) or name.startswith("_") or name in ("exceptions", "meta"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            from botocore.exceptions import ClientError

            mode = self.mode
            if mode == "slow":
                time.sleep(0.02 * self._roll())
            if mode == "refusing" and self._roll() < 0.2:
                self.injected["refused"] += 1
                raise ClientError(
                    {"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}, name
                )
            result = attr(*args, **kwargs)
            if mode == "losing" and self._roll() < 0.1:
                self.injected["answer lost"] += 1
                raise ClientError(
                    {"Error": {"Code": "RequestTimeout", "Message": "injected"}}, name
                )
            return result

        return call


def run(changes: int, seed: int) -> dict[str, Any]:
    import boto3

    from app.audit.events import AuditedTransactionConflict, AuditEvent, Outcome
    from app.ledger.checkpoint import load_public_key
    from app.ledger.entries import AuditEntry
    from app.ledger.errors import LedgerBusy
    from app.ledger.service import build_ledger
    from app.ledger.store import LedgerTable
    from app.ledger.trail import LedgerTrail
    from app.ledger.verify import snapshot_from_deployment, verify_snapshot
    from infra.emulator.server import default_emulator_credentials, start_moto_server

    default_emulator_credentials()
    server, endpoint = start_moto_server()
    try:
        session = boto3.session.Session(region_name="ap-east-1")
        ddb = session.client("dynamodb", endpoint_url=endpoint)
        s3 = session.client("s3", endpoint_url=endpoint)
        kms = session.client("kms", endpoint_url=endpoint)
        key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        table = f"bench-faults-{time.monotonic_ns()}"
        ddb.create_table(
            TableName=table,
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
        s3.create_bucket(
            Bucket=table, CreateBucketConfiguration={"LocationConstraint": "ap-east-1"}
        )
        faulty = FaultyClient(ddb, seed)
        trails = [LedgerTrail(LedgerTable(faulty, table)) for _ in range(4)]
        outcomes: Counter[str] = Counter()
        unclear: Counter[str] = Counter()
        acknowledged: set[str] = set()
        lock = threading.Lock()

        def event(change: str) -> AuditEvent:
            return AuditEvent(
                action="CreateRecord",
                outcome=Outcome.ALLOW,
                reason="member-uploads",
                actor="0b6f7c1e-2d3a-4c5b-8e9f-0123456789ab",
                actor_reg_no="M20001",
                institution="harbour-cardiac-alliance",
                resource=f"Record::{change}",
                actor_roles=("doctor",),
            )

        def deliver(trail: LedgerTrail, change: str) -> None:
            item = {
                "Put": {
                    "TableName": table,
                    "Item": {"pk": {"S": f"CHANGE#{change}"}, "sk": {"S": "x"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for _attempt in range(5):
                try:
                    trail.transact_append(event(change), [item])
                    outcome = "committed"
                except AuditedTransactionConflict:
                    outcome = "already there (409)"
                except LedgerBusy:
                    outcome = "ledger_busy (503)"
                except Exception as exc:  # classified: retryable AWS error or unclear
                    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
                    outcome = f"retryable {code}" if code in RETRYABLE else "unclear"
                    if outcome == "unclear":
                        with lock:
                            unclear[type(exc).__name__] += 1
                with lock:
                    outcomes[outcome] += 1
                if outcome in ("committed", "already there (409)"):
                    with lock:
                        acknowledged.add(change)
                    return

        modes = ["none", "slow", "refusing", "losing"]
        per_mode = changes // len(modes)

        def worker(k: int, mode_index: int) -> None:
            trail = trails[k % 4]
            for i in range(per_mode // 8):
                change = f"m{mode_index}-w{k}-c{i}"
                deliver(trail, change)
                if i % 5 == 0:
                    deliver(trail, change)  # the outbox delivers it again

        started = time.perf_counter()
        for mode_index, mode in enumerate(modes):
            faulty.mode = mode
            threads = [threading.Thread(target=worker, args=(k, mode_index)) for k in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        faulty.mode = "none"
        elapsed = time.perf_counter() - started

        ledger = build_ledger(
            ddb, table, kms=kms, s3=s3, signing_key_arn=key, checkpoint_bucket=table
        )
        ledger.integrate()
        assert ledger.sequencer is not None
        report = verify_snapshot(
            snapshot_from_deployment(ddb, s3, table, table),
            load_public_key(ledger.sequencer.signer.public_key_pem()),
        )
        entries = LedgerTable(ddb, table).all_entries()
        per_change: Counter[str] = Counter(
            AuditEntry.from_bytes(raw).resource.id for raw in entries.values()
        )
        items: set[str] = set()
        kwargs: dict[str, Any] = {"TableName": table}
        while True:
            page = ddb.scan(**kwargs)
            items |= {
                i["pk"]["S"].removeprefix("CHANGE#")
                for i in page["Items"]
                if i["pk"]["S"].startswith("CHANGE#")
            }
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        lost = sum(1 for c in acknowledged if c not in items or per_change[c] != 1)
        duplicated = sum(1 for c, n in per_change.items() if n > 1) + sum(
            1 for c in per_change if c not in items
        )
        partial = sum(1 for c in items if per_change[c] == 0) + sum(
            1 for c in per_change if c not in items
        )
        gaps = 0 if sorted(entries) == list(range(len(entries))) else 1
        return {
            "changes_attempted": len({c for c in per_change} | items | acknowledged),
            "acknowledged": len(acknowledged),
            "entries": len(entries),
            "change_items": len(items),
            "outcomes": dict(outcomes),
            "injected": dict(faulty.injected),
            "lost": lost,
            "duplicated": duplicated,
            "partial": partial,
            "gaps": gaps,
            "unclear_errors": dict(unclear),
            "verify_ok": report.ok,
            "findings": [str(f) for f in report.findings][:5],
            "seconds": elapsed,
        }
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--changes", type=int, default=320, help="changes over the 4 phases")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument(
        "--path",
        choices=("ledger", "http"),
        default="ledger",
        help="the ledger's transaction boundary, or the deployed request path",
    )
    parser.add_argument("--users", type=int, default=4, help="http: simulated doctors")
    parser.add_argument("--phase-seconds", type=float, default=40.0, help="http: per phase")
    parser.add_argument(
        "--restart-seconds", type=float, default=5.0, help="http: the emulator is gone this long"
    )
    parser.add_argument(
        "--switch-off",
        choices=("idempotency", "error-mapping"),
        help="http: remove a protection to show the counts can fail",
    )
    args = parser.parse_args(argv)
    if args.path == "http":
        from benchmarks import faults_http

        return faults_http.report(
            faults_http.run(
                args.users, args.phase_seconds, args.restart_seconds, args.switch_off, args.seed
            )
        )
    r = run(args.changes, args.seed)
    print("faults under load at the ledger's transaction boundary (moto, 4 trails x 2 threads):")
    print(
        f"  {r['acknowledged']} changes acknowledged, {r['change_items']} stored, "
        f"{r['entries']} entries, in {r['seconds']:.1f} s"
    )
    print(f"  injected: {r['injected']}")
    print(f"  answers the callers saw: {r['outcomes']}")
    print(
        f"  lost {r['lost']}, duplicated {r['duplicated']}, partial {r['partial']}, "
        f"gaps {r['gaps']}, unclear errors {sum(r['unclear_errors'].values())} "
        f"{r['unclear_errors'] or ''}"
    )
    print(f"  hub audit verify checks: {'OK' if r['verify_ok'] else 'FAILED'} {r['findings']}")
    bad = r["lost"] + r["duplicated"] + r["partial"] + r["gaps"]
    bad += sum(r["unclear_errors"].values())
    return 0 if bad == 0 and r["verify_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
