"""Helpers for the messaging tests (fixtures are in this directory's conftest.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from app.messaging.e2e import EncryptedMessenger
from app.messaging.local import LocalMessaging
from app.messaging.service import DriftReport

T = TypeVar("T")


@dataclass
class DriftLog:
    """Drift reports from the room authority, waited on with a condition (no sleeping)."""

    reports: list[DriftReport] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, report: DriftReport) -> None:
        with self._changed:
            self.reports.append(report)
            self._changed.notify_all()

    def wait_for(
        self, predicate: Callable[[DriftReport], bool], timeout_s: float = 20.0
    ) -> DriftReport:
        """The first report matching ``predicate``, waiting for it if need be."""

        def found() -> DriftReport | None:
            return next((r for r in self.reports if predicate(r)), None)

        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None, timeout=timeout_s):
                raise TimeoutError(f"no such drift report; have {self.reports}")
            report = found()
            assert report is not None
            return report


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a loop of its own.

    Not ``asyncio.run``: that leaves the main thread with no current event loop, and
    code run later in the session (Pulumi's mock runtime) calls ``get_event_loop()``.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def joined_devices(
    messaging: LocalMessaging, room_id: str, reg_nos: list[str]
) -> list[EncryptedMessenger]:
    """One started device per doctor, joined to the room (the hub invited them)."""
    devices = [EncryptedMessenger(messaging.authority.open_session(r)) for r in reg_nos]
    for device in devices:
        await device.start()
        await device.join(room_id)
    return devices


class RecordingTrail:
    """A ledger stand-in: keeps events, honours the markers' only-if-absent condition."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._markers: set[str] = set()

    def append(self, event: Any) -> Any:
        self.events.append(event)

    def transact_append(self, event: Any, items: Any) -> Any:
        from app.audit.events import AuditedTransactionConflict, AuditReceipt

        markers = [i["Put"]["Item"]["pk"]["S"] for i in items]
        if any(m in self._markers for m in markers):
            raise AuditedTransactionConflict()
        self._markers.update(markers)
        self.events.append(event)
        return AuditReceipt(event.event_id, "test", str(len(self.events)))
