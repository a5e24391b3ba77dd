"""A doctor's Matrix session, handed out by the hub after its usual checks.

The doctor's client asks the hub (``POST /messaging/session``) with their Cognito access
token; authentication has already checked the token, the registration and the
institution (:data:`app.access.auth.CurrentPrincipal`). :class:`MessagingSessions`
then asks Cedar (``OpenMessagingSession``: clinicians only), writes the decision to the
ledger *before* the homeserver issues anything (no session the ledger does not know
of), records who the account sends as (the sender facts the ledger's message entries
name: sub, institution, department), and signs the doctor in with the application
service (a new device and access token). The access token is a secret: the route
answers it ``Cache-Control: no-store`` and it is never logged.

Errors: messaging not configured is a 503 (``messaging_not_configured``); a homeserver
that does not answer or refuses is a 503 (``homeserver_unavailable``), after the
decision was recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from app.access.engine import Action
from app.access.entities import simple_entity, uid
from app.access.gate import AccessGate
from app.audit.events import AuditReceipt
from app.audit.facts import department_code
from app.errors import HubError
from app.identity.principal import Principal
from app.messaging.client import HomeserverUnavailable, MatrixError
from app.messaging.repository import SenderFacts
from app.messaging.service import MatrixSession, RoomAuthority

MESSAGING_SERVICE = "messaging"


class MessagingNotConfigured(HubError):
    status_code = 503
    code = "messaging_not_configured"
    message = "Messaging is not configured in this deployment."


class HomeserverUnreachable(HubError):
    status_code = 503
    code = "homeserver_unavailable"
    message = "The messaging homeserver did not answer; retry."
    retry_after = 1


class MessagingSessions:
    def __init__(
        self, authority: RoomAuthority, gate: AccessGate, clock: Callable[[], datetime]
    ) -> None:
        self.authority = authority
        self._gate = gate
        self._clock = clock

    def open(
        self, principal: Principal, device_name: str = "Hub client"
    ) -> tuple[MatrixSession, AuditReceipt]:
        allowed = self._gate.check(
            principal,
            Action.OPEN_MESSAGING_SESSION,
            uid("Service", MESSAGING_SERVICE),
            [simple_entity("Service", MESSAGING_SERVICE)],
        )
        assert principal.reg_no is not None  # the policy admits clinicians only
        receipt = self._gate.record(allowed)
        facts = SenderFacts(
            reg_no=principal.reg_no,
            sub=principal.sub,
            institution=principal.institution,
            department=department_code(principal.specialties),
        )
        try:
            self.authority.record_sender(facts, self._clock())
            session = self.authority.open_session(principal.reg_no, device_name=device_name)
        except (HomeserverUnavailable, MatrixError) as exc:
            raise HomeserverUnreachable() from exc
        return session, receipt
