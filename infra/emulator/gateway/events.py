"""API Gateway REST proxy events (payload format 1.0) and Lambda proxy responses.

What a Lambda proxy integration receives and returns, as API Gateway builds and reads it
for a REST API (AWS docs, "Input format of a Lambda function for proxy integration" and
"Binary media types for REST APIs"):

- ``resource`` is the matched resource template (``/{proxy+}``), ``path`` the request path
  without the stage, ``pathParameters`` the template's values (or null); ``headers`` and
  ``queryStringParameters`` hold the last value of each name, ``multiValueHeaders`` and
  ``multiValueQueryStringParameters`` all of them (null when there are none);
  ``Content-Length`` and ``Connection`` are not passed on;
- ``requestContext`` carries the account, API id, stage, resource id and path, the HTTP
  method, a request id, the request time, the caller's ``identity.sourceIp`` and user
  agent, and for a Cognito authorizer ``authorizer.claims`` (every value a string);
- the body: when the request's ``Content-Type`` matches one of the API's binary media
  types it is base64-encoded with ``isBase64Encoded: true``; otherwise API Gateway passes
  it as UTF-8 text, and bytes that are not UTF-8 are lost (replaced by U+FFFD);
- the response: ``statusCode``, ``headers``, ``multiValueHeaders``, ``body`` and
  ``isBase64Encoded``. A base64 body becomes bytes only when the request's first
  ``Accept`` media type matches a binary media type; otherwise the client gets the base64
  text. Anything else in the response (another key, a non-integer status, a non-string
  header) is a malformed proxy response: 502.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import parse_qsl

# Headers API Gateway does not pass to a Lambda proxy integration (the body's length is
# the event's, not the client's).
HOP_HEADERS = frozenset({"content-length", "connection"})
RESPONSE_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})


@dataclass
class GatewayRequest:
    """One HTTP request as it reached the gateway."""

    method: str
    raw_path: str  # percent-encoded, including the stage (/v1/me)
    query_string: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        """The last value of header ``name`` (case-insensitive), as API Gateway keeps it."""
        lowered = name.lower()
        value = None
        for key, v in self.headers:
            if key.lower() == lowered:
                value = v
        return value


@dataclass
class GatewayResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class MalformedProxyResponse(ValueError):
    """The function's answer is not a Lambda proxy response."""


def media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def matches_binary(value: str | None, binary_media_types: Sequence[str]) -> bool:
    """True when ``value`` (a Content-Type or Accept media type) is one of the API's binary
    media types; ``*`` in a declared type is a wildcard (``image/*``, ``*/*``)."""
    kind = media_type(value)
    return bool(kind) and any(fnmatchcase(kind, t.strip().lower()) for t in binary_media_types)


def first_accept(value: str | None) -> str | None:
    """API Gateway decides on binary responses by the first media type in ``Accept``."""
    if not value:
        return None
    return value.split(",", 1)[0]


def proxy_event(
    request: GatewayRequest,
    *,
    stage: str,
    path: str,
    resource_path: str,
    resource_id: str,
    path_parameters: Mapping[str, str],
    api_id: str,
    account_id: str,
    region: str,
    binary_media_types: Sequence[str],
    claims: Mapping[str, str] | None,
    request_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The REST proxy event (payload format 1.0) for ``request``."""
    now = now or datetime.now(UTC)
    request_id = request_id or str(uuid.uuid4())
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        if name.lower() in HOP_HEADERS:
            continue
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    # API Gateway adds the caller's address to X-Forwarded-For, as its front end does.
    forwarded = [*multi_headers.get("x-forwarded-for", []), request.source_ip]
    headers["x-forwarded-for"] = ", ".join(forwarded)
    multi_headers["x-forwarded-for"] = [headers["x-forwarded-for"]]
    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for name, value in parse_qsl(request.query_string, keep_blank_values=True):
        query[name] = value
        multi_query.setdefault(name, []).append(value)
    body: str | None
    if not request.body:
        body, encoded = None, False
    elif matches_binary(request.header("content-type"), binary_media_types):
        body, encoded = base64.b64encode(request.body).decode("ascii"), True
    else:
        body, encoded = request.body.decode("utf-8", errors="replace"), False
    domain = f"{api_id}.execute-api.{region}.amazonaws.com"
    context: dict[str, Any] = {
        "accountId": account_id,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": api_id,
        "extendedRequestId": base64.b64encode(uuid.uuid4().bytes[:12]).decode("ascii"),
        "httpMethod": request.method,
        "identity": {
            "accessKey": None,
            "accountId": None,
            "caller": None,
            "cognitoAuthenticationProvider": None,
            "cognitoAuthenticationType": None,
            "cognitoIdentityId": None,
            "cognitoIdentityPoolId": None,
            "principalOrgId": None,
            "sourceIp": request.source_ip,
            "user": None,
            "userAgent": request.header("user-agent"),
            "userArn": None,
        },
        "path": f"/{stage}{path}" if path != "/" else f"/{stage}/",
        "protocol": request.protocol,
        "requestId": request_id,
        "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "requestTimeEpoch": int(now.timestamp() * 1000),
        "resourceId": resource_id,
        "resourcePath": resource_path,
        "stage": stage,
    }
    if claims is not None:
        context["authorizer"] = {"claims": dict(claims)}
    return {
        "resource": resource_path,
        "path": path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(path_parameters) or None,
        "stageVariables": None,
        "requestContext": context,
        "body": body,
        "isBase64Encoded": encoded,
    }


def http_response(
    result: Any, *, accept: str | None, binary_media_types: Sequence[str]
) -> GatewayResponse:
    """The client's response for a Lambda proxy ``result``.

    Raises:
        MalformedProxyResponse: API Gateway would answer 502 Internal server error.
    """
    if not isinstance(result, dict) or set(result) - RESPONSE_KEYS:
        raise MalformedProxyResponse("not a proxy response object")
    try:
        status = int(result.get("statusCode") or 200)
    except (TypeError, ValueError):
        raise MalformedProxyResponse("statusCode is not an integer") from None
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        if not isinstance(value, str | bool):
            raise MalformedProxyResponse(f"header {name} is not a string")
        headers.append((str(name), _header_text(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values if isinstance(values, list) else [values]:
            headers.append((str(name), _header_text(value)))
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("content-type", "application/json"))
    text = result.get("body") or ""
    if not isinstance(text, str):
        raise MalformedProxyResponse("body is not a string")
    if result.get("isBase64Encoded") and matches_binary(first_accept(accept), binary_media_types):
        try:
            body = base64.b64decode(text, validate=True)
        except ValueError:
            raise MalformedProxyResponse("body is not valid base64") from None
    else:
        body = text.encode("utf-8")
    return GatewayResponse(status, headers, body)


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def gateway_error(status: int, message: str, error_type: str | None = None) -> GatewayResponse:
    """One of API Gateway's own responses: JSON ``{"message": ...}``."""
    import json

    headers = [("content-type", "application/json")]
    if error_type:
        headers.append(("x-amzn-errortype", error_type))
    return GatewayResponse(status, headers, json.dumps({"message": message}).encode())
