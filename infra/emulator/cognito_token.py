"""The user pool domain's OAuth 2.0 token endpoint, for the client-credentials grant, on
the embedded moto server (moto has resource servers and app clients, but no
``/oauth2/token``; a recorded gap: :func:`infra.emulator.gaps.cognito_token_endpoint`).

Cognito serves it at ``https://<domain>.auth.<region>.amazoncognito.com/oauth2/token``;
the emulator serves it at ``<emulator endpoint>/_cognito/<domain>/oauth2/token``
(:func:`local_token_url`). What it does, from moto's own state, as Cognito documents it:

- ``POST``, ``application/x-www-form-urlencoded``, ``grant_type=client_credentials``
  (anything else: 400 ``unsupported_grant_type`` / ``invalid_request``);
- the client authenticates with HTTP Basic (``client_id:client_secret``, each
  form-urlencoded, RFC 6749 2.3.1) and must belong to the domain's pool and have a
  secret that matches (compared in constant time): else 401 ``invalid_client``;
- the client must allow the flow (``AllowedOAuthFlowsUserPoolClient`` and
  ``client_credentials`` in ``AllowedOAuthFlows``): else 400 ``unauthorized_client``;
- ``scope`` (optional; default: every scope the client allows) must name only scopes the
  client allows and a resource server of the pool defines: else 400 ``invalid_scope``;
- the access token is an RS256 JWT with Cognito's claims for this grant (``sub`` and
  ``client_id`` the client, ``token_use`` ``access``, ``scope``, ``iss`` the pool's
  issuer, ``iat``, ``auth_time``, ``exp`` from the client's access-token validity,
  ``jti``, ``version``), signed with the key (and ``kid``) moto signs the pool's other
  tokens with, so it verifies against the pool's JWKS exactly as moto's own tokens do.

Install with :func:`serve_token_endpoint` (process-wide, idempotent):
:func:`infra.emulator.server.start_moto_server` does it for every moto it starts.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs, unquote_plus

TOKEN_PATH = re.compile(r"^/_cognito/([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)/oauth2/token$")
_UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
_INSTALLED = False


def local_token_url(emulator_endpoint: str, domain: str) -> str:
    """Where the emulator serves ``domain``'s token endpoint."""
    return f"{emulator_endpoint.rstrip('/')}/_cognito/{domain}/oauth2/token"


def serve_token_endpoint() -> bool:
    """Route ``/_cognito/<domain>/oauth2/token`` on every moto server of this process to
    :func:`token_response`; False when moto is not importable."""
    global _INSTALLED
    try:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    except ImportError:
        return False
    if _INSTALLED:
        return True
    original = DomainDispatcherApplication.__call__

    def __call__(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        match = TOKEN_PATH.match(str(environ.get("PATH_INFO") or ""))
        if match is None:
            return original(self, environ, start_response)
        status, headers, body = token_response(
            match.group(1),
            str(environ.get("REQUEST_METHOD") or ""),
            str(environ.get("CONTENT_TYPE") or ""),
            environ.get("HTTP_AUTHORIZATION"),
            _read_body(environ),
        )
        start_response(status, headers)
        return [body]

    DomainDispatcherApplication.__call__ = __call__  # type: ignore[method-assign]
    _INSTALLED = True
    return True


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    return stream.read(min(length, 64 * 1024)) if stream is not None and length > 0 else b""


def _answer(
    status: str, payload: dict[str, Any], extra: Iterable[tuple[str, str]] = ()
) -> tuple[str, list[tuple[str, str]], bytes]:
    body = json.dumps(payload).encode()
    headers = [
        ("Content-Type", "application/json;charset=UTF-8"),
        ("Cache-Control", "no-store"),
        ("Pragma", "no-cache"),
        ("Content-Length", str(len(body))),
        *extra,
    ]
    return status, headers, body


def _error(status: str, code: str) -> tuple[str, list[tuple[str, str]], bytes]:
    extra = [("WWW-Authenticate", 'Basic realm="token"')] if code == "invalid_client" else []
    return _answer(status, {"error": code}, extra)


def _pool_of_domain(domain: str) -> Any:
    from moto.cognitoidp.models import cognitoidp_backends

    for regions in cognitoidp_backends.values():
        for backend in regions.values():
            found = backend.user_pool_domains.get(domain)
            if found is not None:
                return backend.user_pools.get(found.user_pool_id)
    return None


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    return unquote_plus(client_id), unquote_plus(secret)


def token_response(
    domain: str, method: str, content_type: str, authorization: str | None, body: bytes
) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status line, headers, body) of the token endpoint for one request."""
    if method != "POST":
        return _error("405 Method Not Allowed", "invalid_request")
    if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return _error("400 Bad Request", "invalid_request")
    try:
        form = {k: v[0] for k, v in parse_qs(body.decode("ascii"), strict_parsing=False).items()}
    except (UnicodeError, ValueError):
        return _error("400 Bad Request", "invalid_request")
    pool = _pool_of_domain(domain)
    credentials = _basic_credentials(authorization)
    if pool is None or credentials is None:
        return _error("401 Unauthorized", "invalid_client")
    client_id, secret = credentials
    client = pool.clients.get(client_id)
    if (
        client is None
        or not client.generate_secret
        or not hmac.compare_digest(secret.encode(), str(client.secret).encode())
    ):
        return _error("401 Unauthorized", "invalid_client")
    if form.get("grant_type") != "client_credentials":
        return _error("400 Bad Request", "unsupported_grant_type")
    config = client.extended_config
    if not config.get("AllowedOAuthFlowsUserPoolClient") or "client_credentials" not in (
        config.get("AllowedOAuthFlows") or []
    ):
        return _error("400 Bad Request", "unauthorized_client")
    allowed = list(config.get("AllowedOAuthScopes") or [])
    defined = {
        f"{server.identifier}/{scope['ScopeName']}"
        for server in pool.resource_servers.values()
        for scope in server.scopes or []
    }
    requested = form["scope"].split() if form.get("scope") else allowed
    if not requested or any(s not in allowed or s not in defined for s in requested):
        return _error("400 Bad Request", "invalid_scope")
    lifetime = _access_token_seconds(config)
    token = _mint(pool, client_id, requested, lifetime)
    return _answer(
        "200 OK", {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}
    )


def _access_token_seconds(config: dict[str, Any]) -> int:
    validity = config.get("AccessTokenValidity")
    if not validity:
        return 3600  # Cognito's default: 60 minutes
    unit = str((config.get("TokenValidityUnits") or {}).get("AccessToken") or "hours")
    return int(validity) * _UNIT_SECONDS.get(unit, 3600)


def _mint(pool: Any, client_id: str, scopes: list[str], lifetime: int) -> str:
    from joserfc import jwt

    now = int(time.time())
    payload = {
        "sub": client_id,
        "token_use": "access",
        "scope": " ".join(scopes),
        "auth_time": now,
        "iss": f"https://cognito-idp.{pool.region}.amazonaws.com/{pool.id}",
        "exp": now + lifetime,
        "iat": now,
        "version": 2,
        "jti": str(uuid.uuid4()),
        "client_id": client_id,
    }
    # The header moto's own tokens carry: the kid of moto's bundled key in the pool's JWKS.
    return str(jwt.encode({"kid": "dummy", "alg": "RS256"}, payload, pool.json_web_key))
