"""A break-glass grant and when it is live (pure: storage and time stay outside)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class BreakGlassGrant:
    """One grant: a doctor's emergency access to one patient, for a bounded time.

    Live while ``started_at <= now < expires_at`` and not ended; ending sets ``ended_at``.
    """

    grant_id: str
    reg_no: str
    patient_id: str
    patient_ref: str
    started_at: datetime
    expires_at: datetime
    ended_at: datetime | None

    def live(self, now: datetime) -> bool:
        return self.ended_at is None and self.started_at <= now < self.expires_at
