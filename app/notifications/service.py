"""A doctor chooses how off-line notices reach them (email or SMS).

Decided by Cedar (``SetNotificationPreference``: clinicians, for themselves only: the
route takes no doctor to act for), committed to the ledger, then stored with the doctor
(:mod:`app.notifications.preferences`). Choosing email subscribes the doctor's address
from the user pool to the notification topic, filtered to them (SNS asks them to
confirm once).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from app.access.engine import Action
from app.access.entities import simple_entity, uid
from app.access.gate import AccessGate
from app.audit.events import AuditReceipt
from app.identity.principal import Principal
from app.notifications.channels import Contact, SnsNotifier
from app.notifications.preferences import Channel, NotificationPreferences

NOTIFICATIONS_SERVICE = "notifications"


class NotificationService:
    def __init__(
        self,
        preferences: NotificationPreferences,
        gate: AccessGate,
        clock: Callable[[], datetime],
        *,
        notifier: SnsNotifier | None = None,
        contacts: Callable[[str], Contact] | None = None,
    ) -> None:
        self._preferences = preferences
        self._gate = gate
        self._clock = clock
        self._notifier = notifier
        self._contacts = contacts

    def set_channel(self, principal: Principal, channel: Channel) -> AuditReceipt:
        allowed = self._gate.check(
            principal,
            Action.SET_NOTIFICATION_PREFERENCE,
            uid("Service", NOTIFICATIONS_SERVICE),
            [simple_entity("Service", NOTIFICATIONS_SERVICE)],
            details={"channel": channel.value},
        )
        assert principal.reg_no is not None  # the policy admits clinicians only
        receipt = self._gate.record(allowed)
        self._preferences.set_channel(principal.reg_no, channel, self._clock())
        if channel is Channel.EMAIL and self._notifier is not None and self._contacts:
            email = self._contacts(principal.username).email
            if email:
                self._notifier.subscribe_email(principal.reg_no, email)
        return receipt
