"""Response body of the metrics route: aggregates only, never a patient reference."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from app.audit.schemas import Receipt


class MetricsOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "since": "2026-01-08T00:00:00Z",
                    "until": "2026-01-15T00:00:00Z",
                    "institution": "harbour-cardiac-alliance",
                    "tree_size": 4211,
                    "entries": 388,
                    "response_window_minutes": 60,
                    "counters": {"referrals_sent": 12},
                    "rows": [
                        {
                            "period": "week",
                            "start": "2026-01-08",
                            "metric": "referral_decision_seconds",
                            "n": 12,
                            "median": 540.0,
                        }
                    ],
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

    since: datetime
    until: datetime
    institution: str | None
    tree_size: int
    entries: int
    response_window_minutes: int
    counters: dict[str, int]
    rows: list[dict[str, Any]]
    audit_receipt: Receipt
