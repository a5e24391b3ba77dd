"""Lambda entry point of the outbox dispatcher (run on a schedule).

Each invocation delivers the due outbox items once (:class:`app.outbox.OutboxDispatcher`):
invitation notices, security alarms, room repairs and record cards, with retries and the
dead-letter queue. The services are built once per execution environment; the ledger
signs inline (no background thread survives between invocations).
"""

from __future__ import annotations

from typing import Any

from app.dependencies import build_services
from app.settings import Settings

_services = build_services(Settings())
_services.ledger.inline = True


def handler(event: Any, context: Any) -> dict[str, int]:
    report = _services.dispatcher.run_once()
    return {
        "delivered": len(report.delivered),
        "retried": len(report.retried),
        "dead": len(report.dead),
        "skipped": report.skipped,
    }
