"""Response body of the metrics route: aggregates only, never a patient reference."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from app.audit.schemas import Receipt


class MetricsOut(BaseModel):
    since: datetime
    until: datetime
    institution: str | None
    tree_size: int
    entries: int
    response_window_minutes: int
    counters: dict[str, int]
    rows: list[dict[str, Any]]
    audit_receipt: Receipt
