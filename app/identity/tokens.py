"""Bearer-token verification against the Cognito user pool's JWKS.

What a token must be to pass (anything else raises :class:`InvalidToken`, one opaque
error whatever the cause):

- a compact JWS whose header says ``alg: RS256`` (``none``, HMAC and every other
  algorithm are refused before any key is touched) and names a ``kid``;
- signed by the key with that ``kid`` in the pool's JWKS. The key set is cached; an
  unknown ``kid`` triggers one refresh (at most one per ``refresh_interval`` seconds, so
  forged kids cannot make us hammer the endpoint);
- an **access token**: ``token_use == "access"``, ``client_id`` one of our app
  clients: the core's (its native one; its federated one where the core itself declares
  identity providers), or one a switched-on layer declared (``layer_client_ids``, asked
  afresh for every token from another client, so a removed layer's client is refused
  on the next request). Id tokens
  carry ``aud`` instead and are refused: the API is called with access tokens, as
  Cognito intends;
- ``iss`` equal to the pool's issuer (so a token from another pool fails even if the
  emulator signs every pool with the same key);
- ``exp`` in the future, ``nbf`` (if present) and ``iat`` not in the future, each with
  a small leeway; ``sub`` and ``username`` present;
- no older than ``max_age`` seconds (``iat`` + ``max_age`` + leeway not past), when set:
  the app client's declared access-token validity, which holds even where the issuer
  signs longer-lived tokens (moto's live an hour; the client declares 15 minutes).

A key set that cannot be fetched (endpoint unreachable, an HTTP error, a body that is
not a JWKS) is not the token's fault: it raises :class:`KeySetUnavailable`, which the
API answers 503 with ``Retry-After``. After a failed fetch the endpoint is not tried
again for ``failure_backoff`` seconds (every request in that window fails fast), so an
outage does not hold each request for the fetch timeout.

Time is injectable (``clock``) for tests.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ALGORITHM = "RS256"


class InvalidToken(Exception):
    """The token is not acceptable. Deliberately carries no detail for the client."""

    def __init__(self, why: str = "invalid"):
        # ``why`` is a short code for logs and tests, never token content.
        self.why = why
        super().__init__(why)


class KeySetUnavailable(Exception):
    """The pool's key set could not be fetched: retryable, and no judgement on the token."""

    def __init__(self, retry_after: int):
        # Whole seconds until the endpoint is tried again (at least 1).
        self.retry_after = max(1, retry_after)
        super().__init__("jwks_unavailable")


@dataclass(frozen=True)
class VerifiedToken:
    sub: str
    username: str
    groups: tuple[str, ...]
    client_id: str
    expires_at: int
    claims: Mapping[str, Any]


class JwksSource:
    """Fetches and caches a JWKS; refreshes once on an unknown kid."""

    def __init__(
        self,
        url: str,
        *,
        fetch: Callable[[str], Mapping[str, Any]] | None = None,
        refresh_interval: float = 30.0,
        failure_backoff: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._url = url
        self._fetch = fetch or _http_fetch
        self._refresh_interval = refresh_interval
        self._failure_backoff = failure_backoff
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._failed_at = float("-inf")

    def _load(self) -> None:
        waited = self._clock() - self._failed_at
        if waited < self._failure_backoff:
            raise KeySetUnavailable(math.ceil(self._failure_backoff - waited))
        try:
            body = self._fetch(self._url)
            if not isinstance(body, Mapping):
                raise ValueError("the key set is not a JSON object")
            keys = KeySet.import_key_set(dict(body))  # type: ignore[arg-type]
        except (httpx.HTTPError, JoseError, ValueError, TypeError, KeyError) as exc:
            # Unreachable, refused, or not a JWKS: the identity provider's fault, not
            # the token's. The cause is the exception's type only (no response text).
            self._failed_at = self._clock()
            raise KeySetUnavailable(math.ceil(self._failure_backoff)) from exc
        self._keys = keys
        self._fetched_at = self._clock()

    def key_set_for(self, kid: str) -> KeySet:
        with self._lock:
            if self._keys is None or (
                not _has_kid(self._keys, kid)
                and (self._clock() - self._fetched_at >= self._refresh_interval)
            ):
                self._load()
            assert self._keys is not None
            if not _has_kid(self._keys, kid):
                raise InvalidToken("unknown_kid")
            return self._keys


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)


def _http_fetch(url: str) -> Mapping[str, Any]:
    response = httpx.get(url, timeout=5.0)
    response.raise_for_status()
    body = response.json()
    if not isinstance(body, dict):
        raise ValueError("the key set is not a JSON object")
    return body


class AccessTokenVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        other_client_ids: Sequence[str] = (),
        jwks: JwksSource,
        leeway: int = 30,
        clock: Callable[[], float] = time.time,
        max_age: int | None = None,
        layer_client_ids: Callable[[], Collection[str]] | None = None,
    ):
        if not issuer or not client_id:
            raise ValueError("issuer and client_id are required")
        if max_age is not None and max_age <= 0:
            raise ValueError("max_age must be positive")
        self._issuer = issuer
        self._client_ids = [client_id, *(c for c in other_client_ids if c)]
        self._jwks = jwks
        self._leeway = leeway
        self._clock = clock
        self._max_age = max_age
        self._layer_client_ids = layer_client_ids

    def _client_accepted(self, client_id: object) -> bool:
        if not isinstance(client_id, str) or not client_id:
            return False
        if client_id in self._client_ids:
            return True
        # Asked now, not cached: a layer's client is accepted only while its switch stands.
        return self._layer_client_ids is not None and client_id in self._layer_client_ids()

    def verify(self, token: str) -> VerifiedToken:
        claims = _signed_claims(token, self._jwks)
        now = int(self._clock())
        registry = jwt.JWTClaimsRegistry(
            now=lambda: now,
            leeway=self._leeway,
            iss={"essential": True, "value": self._issuer},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            token_use={"essential": True, "value": "access"},
            client_id={"essential": True},
            username={"essential": True},
        )
        try:
            registry.validate(claims)
        except (JoseError, ValueError) as exc:
            raise InvalidToken("claims_refused") from exc
        if not self._client_accepted(claims.get("client_id")):
            raise InvalidToken("claims_refused")
        # joserfc checks exp/nbf; iat in the future is refused here as well.
        if int(claims["iat"]) > now + self._leeway:
            raise InvalidToken("issued_in_future")
        if self._max_age is not None and now > int(claims["iat"]) + self._max_age + self._leeway:
            raise InvalidToken("older_than_declared_validity")
        if "aud" in claims:
            # Access tokens carry client_id, not aud: an aud means an id token in disguise.
            raise InvalidToken("claims_refused")
        groups = claims.get("cognito:groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise InvalidToken("claims_refused")
        sub, username = claims["sub"], claims["username"]
        if not isinstance(sub, str) or not isinstance(username, str):
            raise InvalidToken("claims_refused")
        return VerifiedToken(
            sub=sub,
            username=username,
            groups=tuple(groups),
            client_id=str(claims["client_id"]),
            expires_at=int(claims["exp"]),
            claims=dict(claims),
        )


def _signed_claims(token: str, source: JwksSource) -> dict[str, Any]:
    """The claims of an RS256 compact JWS signed by a key of ``source`` (else InvalidToken)."""
    try:
        header = jws.extract_compact(token.encode("ascii")).protected
    except (JoseError, ValueError, UnicodeError) as exc:
        raise InvalidToken("malformed") from exc
    if header.get("alg") != ALGORITHM:
        raise InvalidToken("algorithm_refused")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidToken("no_kid")
    keys = source.key_set_for(kid)
    try:
        decoded = jwt.decode(token, keys, algorithms=[ALGORITHM])
    except (JoseError, ValueError) as exc:
        raise InvalidToken("bad_signature") from exc
    return dict(decoded.claims)


@dataclass(frozen=True)
class MachineToken:
    """A verified client-credentials access token: which app client, with which scopes."""

    client_id: str
    scopes: frozenset[str]
    expires_at: int


class MachineTokenVerifier:
    """Verifies the access tokens Cognito issues on the client-credentials grant, for
    machine-to-machine routes (community-care intake).

    What passes: the same signature, algorithm, issuer and time checks as
    :class:`AccessTokenVerifier`, ``token_use == "access"``, ``sub == client_id`` (what
    Cognito sets on this grant), **no** ``username`` (a user's token, whatever its
    scopes, is refused here) and ``scope`` holding ``required_scope``. Which client it
    is and what institution it submits for is data, asked by the caller.
    """

    def __init__(
        self,
        *,
        issuer: str,
        required_scope: str,
        jwks: JwksSource,
        leeway: int = 30,
        clock: Callable[[], float] = time.time,
        max_age: int | None = None,
    ):
        if not issuer or not required_scope:
            raise ValueError("issuer and required_scope are required")
        self._issuer = issuer
        self._scope = required_scope
        self._jwks = jwks
        self._leeway = leeway
        self._clock = clock
        self._max_age = max_age

    def verify(self, token: str) -> MachineToken:
        claims = _signed_claims(token, self._jwks)
        now = int(self._clock())
        registry = jwt.JWTClaimsRegistry(
            now=lambda: now,
            leeway=self._leeway,
            iss={"essential": True, "value": self._issuer},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            token_use={"essential": True, "value": "access"},
            client_id={"essential": True},
            scope={"essential": True},
        )
        try:
            registry.validate(claims)
        except (JoseError, ValueError) as exc:
            raise InvalidToken("claims_refused") from exc
        if int(claims["iat"]) > now + self._leeway:
            raise InvalidToken("issued_in_future")
        if self._max_age is not None and now > int(claims["iat"]) + self._max_age + self._leeway:
            raise InvalidToken("older_than_declared_validity")
        if "username" in claims or "aud" in claims or claims["sub"] != claims["client_id"]:
            # A user's access token (or an id token): not a machine's.
            raise InvalidToken("not_a_client_credentials_token")
        scope = claims["scope"]
        scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
        if self._scope not in scopes:
            raise InvalidToken("scope_missing")
        return MachineToken(
            client_id=str(claims["client_id"]),
            scopes=scopes,
            expires_at=int(claims["exp"]),
        )
