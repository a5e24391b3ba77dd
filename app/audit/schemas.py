"""The audit receipt as routes return it in a response body (one shape for every domain)."""

from __future__ import annotations

from typing import overload

from pydantic import BaseModel

from app.audit.events import AuditReceipt


class Receipt(BaseModel):
    event_id: str
    store: str
    position: str

    @overload
    @classmethod
    def of(cls, receipt: AuditReceipt) -> Receipt: ...

    @overload
    @classmethod
    def of(cls, receipt: None) -> None: ...

    @classmethod
    def of(cls, receipt: AuditReceipt | None) -> Receipt | None:
        """The body form of ``receipt``; None when the action issued none (a replay)."""
        if receipt is None:
            return None
        return cls(event_id=receipt.event_id, store=receipt.store, position=receipt.position)
