"""Who is calling: the typed dependency every protected route takes.

:data:`CurrentPrincipal` turns the bearer token into a :class:`~app.identity.principal.Principal`
before the handler runs: a missing or bad token is a 401; a refused registration,
institution or affiliation a 403, audited through the access gate, with the refusal's
code and a sentence saying what to do. :data:`CurrentApplicant` is for the few routes an
account uses before it is enrolled (self-registration): the token must verify and the
account exist, nothing more. An accepted doctor is kept current
in the directory (at most one write per cache window per doctor), so summoning finds
them. :data:`Gate` hands a route the access gate for decisions it makes itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.access.gate import AccessGate
from app.errors import Forbidden, IdentityProviderUnavailable, Unauthenticated
from app.identity.affiliations import REFUSALS
from app.identity.directory import DoctorDirectory
from app.identity.principal import (
    REFUSAL_REASONS,
    Applicant,
    Authenticator,
    Principal,
    PrincipalRefused,
    TtlCache,
)
from app.identity.tokens import InvalidToken, KeySetUnavailable
from app.openapi import AUDIT_HEADERS, dependency_errors
from app.wiring import provided


class Authentication:
    """Bearer token in, principal out, with every refusal audited."""

    def __init__(
        self,
        authenticator: Authenticator,
        gate: AccessGate,
        directory: DoctorDirectory,
        enrolled: TtlCache[tuple[str, str, tuple[str, ...]], bool],
    ):
        self.authenticator = authenticator
        self._gate = gate
        self._directory = directory
        self._enrolled = enrolled

    def principal(self, token: str) -> Principal:
        """The principal ``token`` stands for.

        Raises:
            Unauthenticated: the token does not verify.
            Forbidden: the token verifies but its holder is refused (audited).
            IdentityProviderUnavailable: the pool's keys cannot be fetched (503, retryable).
        """
        try:
            principal = self.authenticator.authenticate(token)
        except InvalidToken as exc:
            raise Unauthenticated() from exc
        except KeySetUnavailable as exc:
            raise IdentityProviderUnavailable(retry_after=exc.retry_after) from exc
        except PrincipalRefused as refused:
            raise self._refused(refused) from refused
        self.enrol(principal)
        return principal

    def applicant(self, token: str) -> Applicant:
        """The account ``token`` stands for, before any enrolment check.

        Raises:
            Unauthenticated: the token does not verify.
            Forbidden: the account is unknown or disabled (audited).
            IdentityProviderUnavailable: the pool's keys cannot be fetched (503, retryable).
        """
        try:
            return self.authenticator.applicant(token)
        except InvalidToken as exc:
            raise Unauthenticated() from exc
        except KeySetUnavailable as exc:
            raise IdentityProviderUnavailable(retry_after=exc.retry_after) from exc
        except PrincipalRefused as refused:
            raise self._refused(refused) from refused

    def _refused(self, refused: PrincipalRefused) -> Forbidden:
        self._gate.refuse_principal(refused.token.sub, refused.reason, refused.institution)
        detail = f": {refused.message}" if refused.message != refused.reason else ""
        return Forbidden(f"Access refused ({refused.reason}){detail}.", code=refused.reason)

    def enrol(self, principal: Principal) -> None:
        """Keep the directory current; at most one write per cache window per doctor."""
        if principal.reg_no is None:
            return
        key = (principal.reg_no, principal.institution, principal.specialties)

        def write(k: tuple[str, str, tuple[str, ...]]) -> bool:
            self._directory.enrol(k[0], principal.username, k[1], k[2])
            return True

        self._enrolled.get(key, write)


_bearer = HTTPBearer(auto_error=False, description="A Cognito access token")


def current_principal(
    authentication: Annotated[Authentication, Depends(provided(Authentication))],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated()
    return authentication.principal(credentials.credentials)


def current_applicant(
    authentication: Annotated[Authentication, Depends(provided(Authentication))],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Applicant:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated()
    return authentication.applicant(credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
CurrentApplicant = Annotated[Applicant, Depends(current_applicant)]
Gate = Annotated[AccessGate, Depends(provided(AccessGate))]

# A Cedar decision that denies (the gate raises it, audited).
ACCESS_DENIED = Forbidden("Access denied (no-permitting-policy).", code="access_denied")

# Every route that knows its caller answers 401 without a valid token and 403 when the
# token's holder is refused; its actions are audited, so a success carries the receipts.
dependency_errors(
    current_principal,
    Unauthenticated,
    IdentityProviderUnavailable,
    *(
        Forbidden(
            f"Access refused ({reason})"
            + (f": {REFUSALS[reason]}." if reason in REFUSALS else "."),
            code=reason,
        )
        for reason in REFUSAL_REASONS
    ),
    success_headers=AUDIT_HEADERS,
)
# An applicant (self-registration) need not be enrolled: only an unknown account is refused.
dependency_errors(
    current_applicant,
    Unauthenticated,
    IdentityProviderUnavailable,
    Forbidden("Access refused (user_unknown).", code="user_unknown"),
    success_headers=AUDIT_HEADERS,
)
# A route that takes the gate decides with Cedar itself.
dependency_errors(provided(AccessGate), ACCESS_DENIED)
