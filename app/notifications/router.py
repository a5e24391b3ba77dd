"""HTTP route for a doctor's notification channel. Thin.

``PUT /notifications/preference`` answers 401/403 as every signed-in route
(:data:`CurrentPrincipal`), 403 ``access_denied`` when Cedar refuses (clinicians set
their own channel only), 422 for a channel that is not ``email`` or ``sms``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.access.auth import ACCESS_DENIED, CurrentPrincipal
from app.audit.schemas import Receipt
from app.notifications.schemas import PreferenceBody, PreferenceOut
from app.notifications.service import NotificationService
from app.openapi import errors
from app.wiring import provided

router = APIRouter(prefix="/notifications", tags=["notifications"])

Notifications = Annotated[NotificationService, Depends(provided(NotificationService))]


@router.put("/preference", response_model=PreferenceOut, responses=errors(ACCESS_DENIED))
def set_preference(
    body: PreferenceBody, who: CurrentPrincipal, notifications: Notifications
) -> PreferenceOut:
    receipt = notifications.set_channel(who, body.channel)
    return PreferenceOut(channel=body.channel, audit_receipt=Receipt.of(receipt))
