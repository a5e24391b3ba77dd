"""From a bearer token to a :class:`Principal`, with the checks every request passes.

Order, on every request:

1. the access token is verified (:mod:`app.identity.tokens`): anything wrong is 401;
2. the user pool says what kind of account this is (``AdminGetUser``, cached for at most
   ``registration_cache_seconds`` <= 5 minutes): disabled or unknown is refused; a
   federated account brings what its identity provider asserted at sign-in (registration
   number, hospital code, groups). Nothing else is read from the pool: every attribute a
   user could write is ignored, so rewriting one changes nothing the service believes;
3. :func:`~app.identity.affiliations.resolve_enrolment` decides institution, member and
   roles from the ``institutions`` table, read strongly consistent on *every* request
   and never cached: an institution admitted, removed or suspended, an affiliation added
   or removed, a registration approved takes effect on the next request;
4. anyone with a clinical role, or standing for a registration number, must be active on
   the register (the same :func:`~app.identity.registration.check_registration` as the
   Cognito triggers), read strongly consistent and cached for at most the same window;
   the specialist role and the specialties come from the Specialist Register only.

Token claims added by the pre-token-generation trigger (``institution_id``, ``hub_roles``)
are not trusted here: the service re-derives them, so a stale token cannot outlive a
removal, and the same answer holds where the trigger cannot run (the emulator).
Refusals at steps 2-4 are 403 with the refusal code, and are audited.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from app.identity.affiliations import (
    CLINICAL_ROLES,
    REFUSALS,
    AffiliationLookup,
    EnrolmentRefused,
    SignIn,
    resolve_enrolment,
)
from app.identity.federation import ASSERTED_ATTRIBUTES
from app.identity.registration import (
    Practitioner,
    RegistrationRefused,
    RegistrationStatus,
    check_registration,
    normalise_reg_no,
)
from app.identity.tokens import AccessTokenVerifier, InvalidToken, VerifiedToken

K = TypeVar("K")
V = TypeVar("V")

EXTERNAL_PROVIDER_STATUS = "EXTERNAL_PROVIDER"


class TtlCache(Generic[K, V]):
    """A small thread-safe cache whose entries expire ``ttl`` seconds after loading."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl
        self._clock = clock
        self._items: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K, load: Callable[[K], V]) -> V:
        now = self._clock()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and now - hit[0] < self._ttl:
                return hit[1]
        value = load(key)
        if self._ttl > 0:
            with self._lock:
                self._items[key] = (now, value)
        return value


@dataclass(frozen=True)
class Principal:
    sub: str
    username: str
    institution: str
    roles: frozenset[str]
    reg_no: str | None = None
    specialties: tuple[str, ...] = ()
    # The rollout phase of the caller's institution (institutions carry it as data), read
    # with the institution on every request: what ``GET /me`` reports and referrals carry.
    phase: int = 1

    @property
    def clinical(self) -> bool:
        return bool(self.roles & CLINICAL_ROLES)


@dataclass(frozen=True)
class Applicant:
    """An authenticated account, enrolled or not (self-registration acts for these)."""

    sub: str
    username: str
    provider: str | None = None


@dataclass(frozen=True)
class PoolProfile:
    """What the user pool says about an account: federated or native, and for a
    federated one what its identity provider asserted (see ``ASSERTED_ATTRIBUTES``)."""

    provider: str | None = None
    asserted: Mapping[str, str] = field(default_factory=dict)


# Every reason a verified token's holder is refused (the 403's code): the account's own
# check here, the enrolment's (app.identity.affiliations: REFUSALS, but for the sign-up
# trigger's own) and the registration check's (app.identity.registration). The API
# document lists them for every authenticated route.
REFUSAL_REASONS = (
    "user_unknown",
    *(reason for reason in REFUSALS if reason != "granting_attribute_written"),
    "not_on_register",
    *(f"registration_{s.value}" for s in RegistrationStatus if s is not RegistrationStatus.ACTIVE),
)


class PrincipalRefused(Exception):
    def __init__(
        self,
        reason: str,
        token: VerifiedToken,
        institution: str | None = None,
        message: str | None = None,
    ):
        self.reason = reason
        self.token = token
        self.institution = institution
        self.message = message or reason
        super().__init__(reason)


def federated_provider(attributes: Mapping[str, str], user_status: str | None) -> str | None:
    """The identity provider of a federated account, else None.

    Cognito marks a federated user ``EXTERNAL_PROVIDER`` and lists its provider in the
    ``identities`` attribute; users cannot write either.
    """
    if user_status != EXTERNAL_PROVIDER_STATUS:
        return None
    try:
        identities = json.loads(attributes.get("identities") or "[]")
    except ValueError:
        return None
    if isinstance(identities, list) and identities and isinstance(identities[0], dict):
        name = identities[0].get("providerName")
        return str(name) if name else None
    return None


class CognitoProfiles:
    """Reads an account's kind (native or federated) with ``AdminGetUser``."""

    def __init__(self, cognito: Any, user_pool_id: str):
        self._cognito = cognito
        self._pool = user_pool_id

    def profile(self, username: str) -> PoolProfile | None:
        try:
            user = self._cognito.admin_get_user(UserPoolId=self._pool, Username=username)
        except self._cognito.exceptions.UserNotFoundException:
            return None
        if not user.get("Enabled", True):
            return None
        attrs = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
        provider = federated_provider(attrs, user.get("UserStatus"))
        if provider is None:
            # A native account: every custom attribute is the user's own writing, or a
            # legacy value; none of them decides anything. A federated account's asserted
            # attributes are the ones its provider writes at each sign-in (the federation
            # module's ASSERTED_ATTRIBUTES); the service reads nothing else from the pool.
            return PoolProfile()
        asserted = {key: attrs[name] for name, key in ASSERTED_ATTRIBUTES.items() if name in attrs}
        return PoolProfile(provider, asserted)


@dataclass
class RegisterView:
    """What the per-request check needs from the register: status and specialties."""

    practitioner: Practitioner | None
    specialties: tuple[str, ...] = ()


class _SnapshotRegister:
    def __init__(self, view: RegisterView):
        self._view = view

    def find(self, reg_no: str) -> Practitioner | None:
        return self._view.practitioner


@dataclass
class Authenticator:
    verifier: AccessTokenVerifier
    profiles: Any  # CognitoProfiles or anything with profile(username) -> PoolProfile | None
    register: Any  # RegisterStore or anything with entry(reg_no)
    affiliations: AffiliationLookup
    cache_seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _profile_cache: TtlCache[str, PoolProfile | None] = field(init=False)
    _register_cache: TtlCache[str, RegisterView] = field(init=False)

    def __post_init__(self) -> None:
        self._profile_cache = TtlCache(self.cache_seconds, self.clock)
        self._register_cache = TtlCache(self.cache_seconds, self.clock)

    def _load_register(self, reg_no: str) -> RegisterView:
        entry = self.register.entry(reg_no)
        if entry is None:
            return RegisterView(None)
        practitioner = Practitioner(
            entry.reg_no, entry.status, entry.specialties[0] if entry.specialties else None
        )
        return RegisterView(practitioner, tuple(entry.specialties))

    def applicant(self, bearer: str) -> Applicant:
        """The account ``bearer`` stands for, enrolled or not.

        Raises:
            InvalidToken: the token does not verify (401).
            PrincipalRefused: the account is unknown or disabled (403).
        """
        token, profile = self.account(bearer)
        return Applicant(token.sub, token.username, profile.provider)

    def account(self, bearer: str) -> tuple[VerifiedToken, PoolProfile]:
        """The verified token and its account's pool profile, before any enrolment check.

        Raises:
            InvalidToken: the token does not verify (401).
            PrincipalRefused: the account is unknown or disabled (403).
        """
        token = self.verifier.verify(bearer)
        profile = self._profile_cache.get(token.username, self.profiles.profile)
        if profile is None:
            raise PrincipalRefused("user_unknown", token)
        return token, profile

    def authenticate(self, bearer: str) -> Principal:
        """Raises InvalidToken (401) or PrincipalRefused (403)."""
        token, profile = self.account(bearer)
        sign_in = SignIn(token.sub, token.username, profile.provider, profile.asserted)
        try:
            enrolment = resolve_enrolment(sign_in, self.affiliations)
        except EnrolmentRefused as refused:
            raise PrincipalRefused(
                refused.reason, token, refused.institution, refused.message
            ) from refused
        institution = enrolment.institution.id
        roles = enrolment.roles
        specialties: tuple[str, ...] = ()
        reg_no: str | None = None
        if enrolment.reg_no or roles & CLINICAL_ROLES:
            try:
                number = normalise_reg_no(enrolment.reg_no)
                view = self._register_cache.get(number, self._load_register)
                practitioner = check_registration(number, register=_SnapshotRegister(view))
            except RegistrationRefused as refused:
                raise PrincipalRefused(refused.reason, token, institution) from refused
            assert practitioner.status is RegistrationStatus.ACTIVE
            reg_no, specialties = practitioner.reg_no, view.specialties
        if "specialist" in roles and not specialties:
            # The specialist role is only as good as the specialist register says.
            roles = roles - {"specialist"}
        return Principal(
            sub=token.sub,
            username=token.username,
            institution=institution,
            roles=roles,
            reg_no=reg_no,
            specialties=specialties,
            phase=enrolment.institution.phase,
        )


__all__ = [
    "Applicant",
    "Authenticator",
    "CognitoProfiles",
    "InvalidToken",
    "PoolProfile",
    "Principal",
    "PrincipalRefused",
    "TtlCache",
]
