"""Who is submitting: the typed dependency of the intake route.

:data:`CurrentSystem` turns the bearer token into a :class:`SubmittingSystem` before the
handler runs. The token must be a client-credentials access token of the user pool
carrying the intake scope (:class:`app.identity.tokens.MachineTokenVerifier`: a doctor's
token is refused here, 401); its app client must be mapped to an admitted institution in
the institutions table (data, set through the operator channel), else 403
``unknown_client`` / ``institution_not_admitted``, audited. The institution is never
read from the token or the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.access.gate import AccessGate
from app.errors import Forbidden, IdentityProviderUnavailable, Unauthenticated
from app.identity.affiliations import Institution, IntakeClient
from app.identity.principal import Principal
from app.identity.tokens import InvalidToken, KeySetUnavailable, MachineTokenVerifier
from app.intake.scopes import INTAKE_SYSTEM_ROLE
from app.wiring import provided


class IntakeClients(Protocol):
    def intake_client(self, client_id: str) -> IntakeClient | None: ...

    def institution(self, institution: str) -> Institution | None: ...


@dataclass(frozen=True)
class SubmittingSystem:
    """A clinic management system, as the access gate sees it (``principal``)."""

    client: IntakeClient
    principal: Principal


class IntakeAuthentication:
    def __init__(self, verifier: MachineTokenVerifier, clients: IntakeClients, gate: AccessGate):
        self._verifier = verifier
        self._clients = clients
        self._gate = gate

    def system(self, token: str) -> SubmittingSystem:
        """The submitting system ``token`` stands for.

        Raises:
            Unauthenticated: not a valid client-credentials token with the intake scope.
            Forbidden: ``unknown_client`` or ``institution_not_admitted`` (audited).
            IdentityProviderUnavailable: the pool's keys cannot be fetched (503).
        """
        try:
            verified = self._verifier.verify(token)
        except InvalidToken as exc:
            raise Unauthenticated() from exc
        except KeySetUnavailable as exc:
            raise IdentityProviderUnavailable(retry_after=exc.retry_after) from exc
        # The ledger names an app client acting for itself "client:<id>".
        actor = f"client:{verified.client_id}"
        client = self._clients.intake_client(verified.client_id)
        if client is None:
            self._gate.refuse_principal(actor, "intake-client-unknown", None)
            raise Forbidden(
                "This client is not a registered intake system; ask the hub's operators "
                "to map it to its institution.",
                code="unknown_client",
            )
        institution = self._clients.institution(client.institution)
        if institution is None or not institution.admitted:
            self._gate.refuse_principal(actor, "institution_not_admitted", client.institution)
            raise Forbidden(
                "The institution this system submits for is not admitted.",
                code="institution_not_admitted",
            )
        principal = Principal(
            sub=actor,
            username=f"intake:{client.system or verified.client_id}",
            institution=client.institution,
            roles=frozenset({INTAKE_SYSTEM_ROLE}),
        )
        return SubmittingSystem(client, principal)


_bearer = HTTPBearer(auto_error=False, description="A client-credentials access token")


def current_system(
    authentication: Annotated[IntakeAuthentication, Depends(provided(IntakeAuthentication))],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> SubmittingSystem:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated()
    return authentication.system(credentials.credentials)


CurrentSystem = Annotated[SubmittingSystem, Depends(current_system)]
