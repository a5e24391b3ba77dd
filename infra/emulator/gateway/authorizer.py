"""The Cognito user pool authorizer as API Gateway applies it to a REST API method.

For a method with ``authorization: COGNITO_USER_POOLS``, the token in the authorizer's
header must be a JWT (RS256, as Cognito signs) from one of the authorizer's pools
(``iss`` is that pool's issuer and the signature verifies against its JWKS), unexpired.
Then, as AWS documents it for REST APIs:

- a method **without** authorization scopes expects an **ID token** (``token_use: id``);
  an access token is refused;
- a method **with** scopes expects an **access token** (``token_use: access``) whose
  ``scope`` claim holds at least one of them; an ID token, or an access token with none
  of the scopes, is refused.

Every refusal is API Gateway's own ``401 {"message": "Unauthorized"}``; the request never
reaches the integration. On success the token's claims are handed to the integration as
API Gateway does for a Lambda proxy event: every value a string, ``exp``/``iat`` as
``Fri Jul 29 18:52:53 UTC 2016``, lists comma-joined.

Results are cached per token for the authorizer's TTL (300 s, API Gateway's default for
Cognito authorizers), never past the token's ``exp``; the scope check runs every time,
since it belongs to the method.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from app.identity.tokens import InvalidToken, JwksSource

AUTHORIZER_RESULT_TTL_S = 300


class Unauthorized(Exception):
    """The gateway answers 401 {"message": "Unauthorized"}; ``why`` is for logs and tests."""

    def __init__(self, why: str):
        self.why = why
        super().__init__(why)


def pool_id_of(provider_arn: str) -> str:
    """``arn:aws:cognito-idp:<region>:<account>:userpool/<pool id>`` -> ``<pool id>``."""
    resource = provider_arn.split(":", 5)[-1]
    if not resource.startswith("userpool/"):
        raise ValueError(f"{provider_arn!r} is not a Cognito user pool ARN")
    return resource.split("/", 1)[1]


def issuer_of(pool_id: str) -> str:
    region = pool_id.split("_", 1)[0]
    return f"https://cognito-idp.{region}.amazonaws.com/{pool_id}"


class CognitoAuthorizer:
    """Verifies tokens for the pools in ``provider_arns``.

    Args:
        provider_arns: the authorizer's declared user pool ARNs.
        jwks_url: pool id -> the URL of that pool's JWKS (on AWS, the issuer's
            ``/.well-known/jwks.json``; on the emulator, moto's).
        clock: wall-clock seconds, injectable for tests.
    """

    def __init__(
        self,
        provider_arns: Sequence[str],
        jwks_url: Callable[[str], str],
        *,
        clock: Callable[[], float] = time.time,
        fetch: Callable[[str], Mapping[str, Any]] | None = None,
    ):
        self._clock = clock
        self._pools = {
            issuer_of(pool): JwksSource(jwks_url(pool), fetch=fetch)
            for pool in (pool_id_of(arn) for arn in provider_arns)
        }
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def authorize(self, header_value: str | None, scopes: Sequence[str]) -> dict[str, str]:
        """The claims to hand to the integration, or :class:`Unauthorized`."""
        if not header_value:
            raise Unauthorized("no_token")
        token = header_value.strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        claims = self._verified_claims(token)
        use = claims.get("token_use")
        if scopes:
            if use != "access":
                raise Unauthorized("access_token_expected")
            granted = str(claims.get("scope") or "").split()
            if not set(granted) & set(scopes):
                raise Unauthorized("no_required_scope")
        elif use != "id":
            raise Unauthorized("id_token_expected")
        return gateway_claims(claims)

    def _verified_claims(self, token: str) -> dict[str, Any]:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(token)
        if cached is not None and cached[0] > now:
            return cached[1]
        claims = self._verify(token, now)
        until = min(now + AUTHORIZER_RESULT_TTL_S, float(claims["exp"]))
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = (until, claims)
        return claims

    def _verify(self, token: str, now: float) -> dict[str, Any]:
        # The header and payload are read unverified only to pick the pool's key set.
        parts = token.split(".")
        try:
            if len(parts) != 3:
                raise ValueError("not a compact JWS")
            header = json.loads(_b64url(parts[0]))
            unverified = json.loads(_b64url(parts[1]))
            if not isinstance(header, dict) or not isinstance(unverified, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeError):
            raise Unauthorized("malformed") from None
        if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
            raise Unauthorized("algorithm_refused")
        source = self._pools.get(str(unverified.get("iss")))
        if source is None:
            raise Unauthorized("issuer_not_trusted")
        try:
            keys = source.key_set_for(header["kid"])
            claims = dict(jwt.decode(token, keys, algorithms=["RS256"]).claims)
        except (InvalidToken, JoseError, ValueError):
            raise Unauthorized("bad_signature") from None
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp <= now:
            raise Unauthorized("expired")
        if claims.get("iss") not in self._pools:
            raise Unauthorized("issuer_not_trusted")
        return claims


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def gateway_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as API Gateway hands them to a Lambda proxy integration: all strings."""
    out: dict[str, str] = {}
    for name, value in claims.items():
        if name in ("exp", "iat") and isinstance(value, int | float):
            out[name] = _gateway_time(value)
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            out[name] = ",".join(str(v) for v in value)
        else:
            out[name] = str(value)
    return out


def _gateway_time(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%a %b %d %H:%M:%S UTC %Y")
