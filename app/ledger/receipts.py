"""Audit receipts on HTTP responses, for every route, without the route knowing.

:class:`AuditReceiptMiddleware` (pure ASGI) opens a per-request collection; every
receipt the ledger issues while serving the request lands in it
(:func:`record`, called by :class:`app.ledger.trail.LedgerTrail`), and the response
carries them:

- ``Audit-Receipt``: one element per audited action, in order, comma-separated, each
  ``<leaf index>;event="<event id>"`` (the leaf index is the entry's position in the
  log; fetch ``GET /audit/proof/inclusion?index=<leaf index>&size=<head size>`` once a
  signed head covers it);
- on a ledger of several trails, a receipt on trail ``k > 0`` reads
  ``<leaf index>;trail=<k>;event="<event id>"`` (its index is in trail ``k``; proofs take
  ``trail=<k>``), and ``Audit-Tree-Head`` has one element per trail the response wrote
  to, each prefixed ``trail=<k>;``;
- ``Audit-Tree-Head``: the latest signed tree head this instance knows,
  ``size=<n>;root="<base64>";timestamp=<ms>``. It covers a receipt when ``size`` is
  greater than the receipt's leaf index; otherwise (the usual case: heads are signed in
  the background) a covering head follows within 2 s at ``GET /audit/head``, and
  ``GET /audit/proof/consistency`` links the two;
- ``X-Request-ID``: the id written into each entry's ``request_id`` (a valid incoming
  ``X-Request-ID`` is kept, otherwise one is generated).

The head is a convenience, the receipt is not: when signing or reading the head fails
(in inline mode on Lambda, DynamoDB or KMS throttled or unreachable), the response goes
out as the route decided it, with its receipts and without ``Audit-Tree-Head``. The
action is committed by then: turning its answer into an error would make a client retry
something already done. The next integration covers the entries (any later audited
response integrates everything waiting before it).

Context variables are copied into the worker threads FastAPI runs sync routes in, and
the collection is a shared list, so receipts from those threads are seen here.
"""

from __future__ import annotations

import base64
import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import anyio

from app.audit.events import AuditReceipt

RECEIPT_HEADER = "audit-receipt"
HEAD_HEADER = "audit-tree-head"
REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")

log = logging.getLogger(__name__)

_receipts: ContextVar[list[AuditReceipt] | None] = ContextVar("audit_receipts", default=None)
_request_id: ContextVar[str | None] = ContextVar("audit_request_id", default=None)


def record(receipt: AuditReceipt) -> None:
    """Remember a receipt for the response being served (no-op outside a request)."""
    collected = _receipts.get()
    if collected is not None:
        collected.append(receipt)


def current_request_id() -> str | None:
    return _request_id.get()


def receipt_header(collected: list[AuditReceipt]) -> str:
    return ", ".join(
        f"{r.leaf_index if r.leaf_index is not None else r.position};"
        + (f"trail={r.trail};" if r.trail else "")
        + f'event="{r.event_id}"'
        for r in collected
    )


def parse_receipts(value: str) -> list[tuple[int, int, str]]:
    """(trail, leaf index, event id) triples from an ``Audit-Receipt`` header."""
    out = []
    for part in value.split(","):
        index, *params = part.strip().split(";")
        fields = dict(p.partition("=")[::2] for p in params)
        trail = int(fields.get("trail", "0"))
        out.append((trail, int(index), fields.get("event", "").strip('"')))
    return out


def parse_receipt_header(value: str) -> list[tuple[int, str]]:
    """(leaf index, event id) pairs from an ``Audit-Receipt`` header (clients, tests);
    :func:`parse_receipts` also gives each receipt's trail."""
    return [(index, event) for _, index, event in parse_receipts(value)]


def tree_head_header(head: Any, trail: int | None = None) -> str:
    root = base64.b64encode(head.root).decode()
    prefix = f"trail={trail};" if trail is not None else ""
    return f'{prefix}size={head.size};root="{root}";timestamp={head.timestamp_ms}'


HeadLookup = Callable[[Any], Any]


class AuditReceiptMiddleware:
    """Adds the receipt headers above to every HTTP response that recorded an entry.

    ``latest_head(covering)`` returns the latest signed head (an object with ``size``,
    ``root``, ``timestamp_ms``) or None, given the largest leaf index the response
    recorded; it is only called when a receipt was issued.
    """

    def __init__(self, app: Any, latest_head: HeadLookup | None = None):
        self.app = app
        self._latest_head = latest_head

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next(
            (v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-request-id"),
            "",
        )
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        collected: list[AuditReceipt] = []
        token_r = _receipts.set(collected)
        token_i = _request_id.set(request_id)

        async def send_with_receipts(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                if collected:
                    headers.append((RECEIPT_HEADER.encode(), receipt_header(collected).encode()))
                    covering: int | dict[int, int]
                    if all(r.trail == 0 for r in collected):
                        covering = max(r.leaf_index or 0 for r in collected)
                    else:
                        # Several trails: the largest leaf index per trail touched.
                        covering = {}
                        for r in collected:
                            covering[r.trail] = max(covering.get(r.trail, 0), r.leaf_index or 0)
                    head = await self._head_or_none(covering)
                    if isinstance(head, list):  # [(trail, head)]: one element per trail
                        value = ", ".join(tree_head_header(h, t) for t, h in head)
                        if value:
                            headers.append((HEAD_HEADER.encode(), value.encode()))
                    elif head is not None:
                        value = tree_head_header(head)
                        headers.append((HEAD_HEADER.encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_receipts)
        finally:
            _receipts.reset(token_r)
            _request_id.reset(token_i)

    async def _head_or_none(self, covering: int | dict[int, int]) -> Any:
        if self._latest_head is None:
            return None
        try:
            return await anyio.to_thread.run_sync(self._latest_head, covering)
        except Exception as exc:  # the response stands without a head (module docstring)
            log.error("no tree head for the response: %s", type(exc).__name__)
            return None
