"""From a bearer token to a :class:`Principal`, with the checks every request passes.

Order, on every request:

1. the access token is verified (:mod:`app.identity.tokens`): anything wrong is 401;
2. the user's profile (Medical Council number and institution) is read from the user
   pool with ``AdminGetUser``, cached for at most ``registration_cache_seconds``
   (<= 5 minutes). We read the pool rather than trusting extra token claims because
   moto does not run the pre-token trigger, and because institution is a mutable
   attribute that a 15-minute token could hold stale;
3. the institution must be admitted in this stack's phase;
4. anyone with a clinical role (``doctor``, ``specialist``), or carrying a
   registration number, must be active on the register (the same
   :func:`~app.identity.registration.check_registration` as the Cognito triggers),
   read with a strongly consistent read and cached for at most the same window;
5. roles are ``cognito:groups`` intersected with the five known role groups.

Refusals at steps 3-4 are 403 with the refusal code, and are audited.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from app.identity.registration import (
    Practitioner,
    RegistrationRefused,
    RegistrationStatus,
    check_registration,
)
from app.identity.tokens import AccessTokenVerifier, InvalidToken, VerifiedToken
from app.identity.triggers import ROLE_GROUPS

CLINICAL_ROLES = frozenset({"doctor", "specialist"})

K = TypeVar("K")
V = TypeVar("V")


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

    @property
    def clinical(self) -> bool:
        return bool(self.roles & CLINICAL_ROLES)


@dataclass(frozen=True)
class UserProfile:
    reg_no: str | None
    institution: str | None


class PrincipalRefused(Exception):
    def __init__(self, reason: str, token: VerifiedToken, profile: UserProfile | None = None):
        self.reason = reason
        self.token = token
        self.profile = profile
        super().__init__(reason)


class CognitoProfiles:
    """Reads ``custom:mchk_reg_no`` and ``custom:institution_id`` with AdminGetUser."""

    def __init__(self, cognito: Any, user_pool_id: str):
        self._cognito = cognito
        self._pool = user_pool_id

    def profile(self, username: str) -> UserProfile | None:
        try:
            user = self._cognito.admin_get_user(UserPoolId=self._pool, Username=username)
        except self._cognito.exceptions.UserNotFoundException:
            return None
        if not user.get("Enabled", True):
            return None
        attrs = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
        reg_no = attrs.get("custom:mchk_reg_no") or None
        return UserProfile(reg_no, attrs.get("custom:institution_id") or None)


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
    profiles: Any  # CognitoProfiles or anything with profile(username)
    register: Any  # RegisterStore or anything with entry(reg_no)
    admitted_institutions: Collection[str]
    cache_seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _profile_cache: TtlCache[str, UserProfile | None] = field(init=False)
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

    def authenticate(self, bearer: str) -> Principal:
        """Raises InvalidToken (401) or PrincipalRefused (403)."""
        token = self.verifier.verify(bearer)
        profile = self._profile_cache.get(token.username, self.profiles.profile)
        if profile is None:
            raise PrincipalRefused("user_unknown", token)
        roles = frozenset(g for g in token.groups if g in ROLE_GROUPS)
        if not profile.institution or profile.institution not in self.admitted_institutions:
            raise PrincipalRefused("institution_not_admitted", token, profile)
        specialties: tuple[str, ...] = ()
        reg_no: str | None = None
        if profile.reg_no or roles & CLINICAL_ROLES:
            try:
                from app.identity.registration import normalise_reg_no

                number = normalise_reg_no(profile.reg_no)
            except RegistrationRefused as refused:
                raise PrincipalRefused(refused.reason, token, profile) from refused
            view = self._register_cache.get(number, self._load_register)
            try:
                practitioner = check_registration(
                    number,
                    profile.institution,
                    register=_SnapshotRegister(view),
                    admitted_institutions=self.admitted_institutions,
                )
            except RegistrationRefused as refused:
                raise PrincipalRefused(refused.reason, token, profile) from refused
            assert practitioner.status is RegistrationStatus.ACTIVE
            reg_no, specialties = practitioner.reg_no, view.specialties
        if "specialist" in roles and not specialties:
            # The specialist role is only as good as the specialist register says.
            roles = roles - {"specialist"}
        return Principal(
            sub=token.sub,
            username=token.username,
            institution=profile.institution,
            roles=roles,
            reg_no=reg_no,
            specialties=specialties,
        )


__all__ = [
    "Authenticator",
    "CognitoProfiles",
    "InvalidToken",
    "Principal",
    "PrincipalRefused",
    "TtlCache",
    "UserProfile",
]
