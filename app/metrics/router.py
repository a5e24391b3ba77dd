"""``GET /metrics``: the pilot metrics over a window of the ledger. Thin."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.access.auth import ACCESS_DENIED, CurrentPrincipal
from app.audit.schemas import Receipt
from app.errors import InvalidRequest
from app.metrics.schemas import MetricsOut
from app.metrics.service import MetricsService
from app.openapi import errors
from app.wiring import provided

router = APIRouter(tags=["metrics"])
Metrics = Annotated[MetricsService, Depends(provided(MetricsService))]


def _ms(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


@router.get(
    "/metrics",
    response_model=MetricsOut,
    responses=errors(
        ACCESS_DENIED,
        InvalidRequest("The window is not valid.", code="window_invalid"),
        InvalidRequest("The window is too large.", code="window_too_large"),
    ),
)
def metrics(
    who: CurrentPrincipal,
    service: Metrics,
    institution: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    period: Annotated[str, Query(pattern="^(day|week|all)$")] = "week",
    response_window_minutes: Annotated[int, Query(ge=1, le=7 * 24 * 60)] = 60,
) -> MetricsOut:
    """Institution admins: ``?institution=<their own>``; auditors: any, or all (none)."""
    end = until or datetime.now(UTC)
    start = since or end - timedelta(days=7)
    read, receipt = service.window(who, institution, _ms(start), _ms(end), response_window_minutes)
    rows = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.as_dict().items()}
        for r in read.report.rows
        if r.period in (period, "all")
    ]
    return MetricsOut(
        since=start,
        until=end,
        institution=institution,
        tree_size=read.tree_size,
        entries=read.report.entries,
        response_window_minutes=response_window_minutes,
        counters=read.report.counters,
        rows=rows,
        audit_receipt=Receipt.of(receipt),
    )
