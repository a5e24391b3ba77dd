"""HTTP route for a doctor's notification channel. Thin."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.access.auth import CurrentPrincipal
from app.audit.schemas import Receipt
from app.notifications.schemas import PreferenceBody, PreferenceOut
from app.notifications.service import NotificationService
from app.wiring import provided

router = APIRouter(prefix="/notifications", tags=["notifications"])

Notifications = Annotated[NotificationService, Depends(provided(NotificationService))]


@router.put("/preference", response_model=PreferenceOut)
def set_preference(
    body: PreferenceBody, who: CurrentPrincipal, notifications: Notifications
) -> PreferenceOut:
    receipt = notifications.set_channel(who, body.channel)
    return PreferenceOut(channel=body.channel, audit_receipt=Receipt.of(receipt))
