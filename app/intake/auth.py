"""Who is submitting: the typed dependency of the intake route.

:data:`CurrentSystem` turns the bearer token into a :class:`SubmittingSystem` before the
handler runs. The token must be a client-credentials access token of the user pool
carrying the intake scope (:class:`app.identity.tokens.MachineTokenVerifier`: a doctor's
token is refused here, 401); its app client must be one a standing layer declared (the
layer's switch item lists it: :attr:`app.identity.affiliations.HubSwitches.intake_client_ids`,
read on every request, so a removed layer's clients are refused at once, tokens already
issued included), else 403 ``intake_switched_off``; and it must be mapped to an admitted
institution in the institutions table (data, set through the operator channel), else 403
``unknown_client`` / ``institution_not_admitted``. Every refusal is audited. The
institution is never read from the token or the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import OAuth2
from fastapi.security.utils import get_authorization_scheme_param

from app.access.gate import AccessGate
from app.errors import Forbidden, IdentityProviderUnavailable, Unauthenticated
from app.identity.affiliations import HubSwitches, Institution, IntakeClient
from app.identity.principal import Principal
from app.identity.tokens import InvalidToken, KeySetUnavailable, MachineTokenVerifier
from app.intake.scopes import INTAKE_SYSTEM_ROLE, INTAKE_WRITE_SCOPE
from app.openapi import AUDIT_HEADERS, dependency_errors
from app.wiring import provided


def unknown_client() -> Forbidden:
    return Forbidden(
        "This client is not a registered intake system; ask the hub's operators "
        "to map it to its institution.",
        code="unknown_client",
    )


def institution_not_admitted() -> Forbidden:
    return Forbidden(
        "The institution this system submits for is not admitted.",
        code="institution_not_admitted",
    )


def intake_switched_off() -> Forbidden:
    return Forbidden(
        "Community-care intake is switched off for this client: the hub layer that "
        "declared it is not deployed.",
        code="intake_switched_off",
    )


class IntakeClients(Protocol):
    def switches(self) -> HubSwitches: ...

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
            Forbidden: ``intake_switched_off``, ``unknown_client`` or
                ``institution_not_admitted`` (audited).
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
        # Asked now, not cached: a client submits only while the layer that declared it
        # stands (its destroy deletes the switch; the client's mapping and any token
        # issued in the last 15 minutes outlive it).
        if verified.client_id not in self._clients.switches().intake_client_ids:
            self._gate.refuse_principal(actor, "intake_switched_off", None)
            raise intake_switched_off()
        client = self._clients.intake_client(verified.client_id)
        if client is None:
            self._gate.refuse_principal(actor, "intake-client-unknown", None)
            raise unknown_client()
        institution = self._clients.institution(client.institution)
        if institution is None or not institution.admitted:
            self._gate.refuse_principal(actor, "institution_not_admitted", client.institution)
            raise institution_not_admitted()
        principal = Principal(
            sub=actor,
            username=f"intake:{client.system or verified.client_id}",
            institution=client.institution,
            roles=frozenset({INTAKE_SYSTEM_ROLE}),
        )
        return SubmittingSystem(client, principal)


# The document names the grant and the scope (OAuth 2.0 client credentials against the
# user pool's domain), so a vendor reads there that a doctor's token is not accepted.
# The token endpoint is the deployment's (stack output ``intakeTokenUrl``).
INTAKE_TOKEN_URL = "https://{intakeDomain}.auth.ap-east-1.amazoncognito.com/oauth2/token"
_client_credentials = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl=INTAKE_TOKEN_URL,
            scopes={INTAKE_WRITE_SCOPE: "Submit messages for the client's institution."},
        )
    ),
    scheme_name="IntakeClientCredentials",
    description="A clinic management system's access token, from the user pool's token "
    "endpoint on the client-credentials grant with the scope `hub-intake/records.write` "
    "(the token URL is the deployment's stack output `intakeTokenUrl`; `{intakeDomain}` is "
    "its pool domain). Sent as `Authorization: Bearer <token>`. A doctor's token is refused "
    "(401), and so is this token on every other route.",
    auto_error=False,
)


def current_system(
    authentication: Annotated[IntakeAuthentication, Depends(provided(IntakeAuthentication))],
    authorization: Annotated[
        str | None, Security(_client_credentials, scopes=[INTAKE_WRITE_SCOPE])
    ],
) -> SubmittingSystem:
    scheme, token = get_authorization_scheme_param(authorization)
    if not token or scheme.lower() != "bearer":
        raise Unauthenticated()
    return authentication.system(token)


CurrentSystem = Annotated[SubmittingSystem, Depends(current_system)]

# The machine caller's refusals (a doctor's token is a 401 here); a submission is audited,
# so a success carries the receipts.
dependency_errors(
    current_system,
    Unauthenticated,
    IdentityProviderUnavailable,
    intake_switched_off(),
    unknown_client(),
    institution_not_admitted(),
    success_headers=AUDIT_HEADERS,
)
