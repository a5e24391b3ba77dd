"""A sequencer killed between any two of its writes, then restarted: nothing lost or doubled.

Each round appends a few entries and integrates them through clients that let exactly
``k`` writes through and then die (every later call raises :class:`Killed`, a
``BaseException`` no handler catches, as a SIGKILL leaves no chance to clean up), for
``k = 0, 1, 2, ...`` until an integration finishes within its budget: so every point
between two writes of an integration (inside the parallel node and index writes too) is
a crash point once. After each crash a fresh sequencer (a restarted process: nothing in
memory) integrates, and then:

- the head covers every stored entry, each exactly once (leaf nodes ``0 .. n-1``, no gap);
- ``hub audit verify``'s checks pass on the table and the checkpoint bucket;
- every entry is found by the audit listing (the query index lost no row), and the
  current head is in the Object Lock archive.

Before the restart, what readers see is still the old head, and listings stop at it.

And where heads are signed inline (Lambda), a head that cannot be signed (KMS throttled)
does not turn an action already committed into an error: the response goes out with its
receipt and without a head, and the next response's integration covers the entry.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import ClientError
from ledger_testkit import LedgerEnv

from app.audit.events import AuditEvent, Outcome
from app.ledger.checkpoint import load_public_key
from app.ledger.sequencer import CheckpointArchive
from app.ledger.service import EntryQuery, build_ledger
from app.ledger.store import LedgerTable
from app.ledger.verify import snapshot_from_deployment, verify_snapshot

SUB = "0b6f7c1e-2d3a-4c5b-8e9f-0123456789ab"
WRITES = frozenset(
    {"put_item", "put_object", "transact_write_items", "batch_write_item", "update_item"}
)


class Killed(BaseException):
    """The sequencer's process died here."""


class Mortality:
    """Shared by a process's clients: ``budget`` writes go through, then the process dies."""

    def __init__(self, budget: int):
        self.budget = budget
        self.writes = 0
        self.dead = False
        self._lock = threading.Lock()

    def before(self, operation: str) -> None:
        with self._lock:
            if not self.dead and operation in WRITES:
                if self.writes == self.budget:
                    self.dead = True
                else:
                    self.writes += 1
            if self.dead:
                raise Killed(operation)


class MortalClient:
    def __init__(self, real: Any, mortality: Mortality):
        self._real = real
        self._mortality = mortality

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if not callable(attr) or name.startswith("_") or name in ("exceptions", "meta"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._mortality.before(name)
            return attr(*args, **kwargs)

        return call


def event(n: int) -> AuditEvent:
    return AuditEvent(
        action="ViewGroup",
        outcome=Outcome.ALLOW,
        reason="member-views-open-group",
        actor=SUB,
        actor_reg_no="M20001",
        institution="harbour-cardiac-alliance",
        resource=f"Group::g{n:04d}",
        actor_roles=("doctor",),
    )


def mortal(env: LedgerEnv, budget: int) -> tuple[Any, Mortality]:
    mortality = Mortality(budget)
    dying = LedgerEnv(
        **{
            **env.__dict__,
            "dynamodb": MortalClient(env.dynamodb, mortality),
            "s3": MortalClient(env.s3, mortality),
            "kms": MortalClient(env.kms, mortality),
        }
    )
    return dying.ledger(), mortality


def check_whole(env: LedgerEnv, appended: int, new: range) -> None:
    """After the restarted sequencer's integration: the invariants of the module docstring."""
    table = LedgerTable(env.dynamodb, env.table_name)
    head = table.read_head()
    assert head is not None and head.size == appended
    assert sorted(table.all_entries()) == list(range(appended))
    assert sorted(table.all_leaf_hashes()) == list(range(appended))  # each leaf once
    ledger = env.ledger()
    report = verify_snapshot(
        snapshot_from_deployment(env.dynamodb, env.s3, env.table_name, env.bucket),
        load_public_key(ledger.public_key_pem()),
    )
    assert report.ok, report.findings
    listed = ledger.entries(EntryQuery(actor=SUB, limit=10_000))
    assert [e.leaf_index for e in listed] == list(range(appended))
    for resource in (f"group:g{n:04d}" for n in new):
        assert len(ledger.entries(EntryQuery(resource=resource))) == 1, resource
    archived = CheckpointArchive(env.s3, env.bucket).list()
    assert any(h.to_json() == head.to_json() for h in archived)


def test_a_sequencer_killed_after_any_write_recovers_on_restart(ledger_env: LedgerEnv) -> None:
    writer = ledger_env.ledger()
    appended = 0
    for _ in range(3):  # a tree that already has a head and border nodes
        writer.trail.append(event(appended))
        appended += 1
    writer.integrate()
    crashes = 0
    for budget in range(200):
        new = range(appended, appended + 3)
        for n in new:
            writer.trail.append(event(n))
        appended += len(new)
        before = LedgerTable(ledger_env.dynamodb, ledger_env.table_name).read_head()
        assert before is not None
        dying, mortality = mortal(ledger_env, budget)
        try:
            dying.integrate()
        except Killed:
            crashes += 1
            assert mortality.writes == budget
            # Readers still see the old head, and listings stop at it.
            current = LedgerTable(ledger_env.dynamodb, ledger_env.table_name).read_head()
            assert current is not None and current.to_json() == before.to_json()
            listed = ledger_env.ledger().entries(EntryQuery(actor=SUB, limit=10_000))
            assert [e.leaf_index for e in listed] == list(range(before.size))
        else:
            check_whole(ledger_env, appended, new)
            break
        restarted = build_ledger(
            ledger_env.dynamodb,
            ledger_env.table_name,
            kms=ledger_env.kms,
            s3=ledger_env.s3,
            signing_key_arn=ledger_env.key_arn,
            checkpoint_bucket=ledger_env.bucket,
            origin="test-ledger",
        )
        restarted.integrate()
        check_whole(ledger_env, appended, new)
    else:
        raise AssertionError("the integration never finished within its write budget")
    # Nodes, index rows (several per entry), the archived head and the head: each a point.
    assert crashes >= 15, crashes


class ThrottledKms:
    """KMS refusing ``Sign`` as it does when the key's request quota is spent."""

    def __init__(self, real: Any):
        self._real = real

    def __getattr__(self, name: str) -> Any:
        if name == "sign":
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Sign"
            )
        return getattr(self._real, name)


def test_a_head_that_cannot_be_signed_inline_does_not_fail_the_committed_action(
    ledger_env: LedgerEnv,
) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from app.errors import install_error_handlers
    from app.ledger.receipts import AuditReceiptMiddleware, parse_receipt_header

    def app_over(env: LedgerEnv) -> TestClient:
        ledger = env.ledger()
        ledger.inline = True
        app = FastAPI()
        install_error_handlers(app)
        app.add_middleware(AuditReceiptMiddleware, latest_head=ledger.response_head)

        @app.post("/act/{n}")
        def act(n: int) -> dict[str, int]:
            return {"index": ledger.trail.append(event(n)).leaf_index or 0}

        return TestClient(app, raise_server_exceptions=False)

    throttled = LedgerEnv(**{**ledger_env.__dict__, "kms": ThrottledKms(ledger_env.kms)})
    answer = app_over(throttled).post("/act/0")
    assert answer.status_code == 200, answer.text
    assert parse_receipt_header(answer.headers["audit-receipt"])[0][0] == 0
    assert "audit-tree-head" not in answer.headers
    assert LedgerTable(ledger_env.dynamodb, ledger_env.table_name).read_head() is None
    later = app_over(ledger_env).post("/act/1")
    fields = dict(p.split("=", 1) for p in later.headers["audit-tree-head"].split(";"))
    assert int(fields["size"]) == 2  # the next response's head covers the first entry too
