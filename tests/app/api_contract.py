"""The contract between the API and its document, checked on every response a test sees.

:class:`DocumentedResponses` wraps the app (ASGI middleware, added before the test
client starts): for each response it finds the operation that served the request (the
route Starlette matched: method and path template), and records a violation when the
status is not one the operation's document lists, or when an error body's code is not
one of that status's documented codes. The session fixtures install it on every app the
service tests build; an autouse fixture (tests/app/conftest.py) fails the test during
which a violation appeared. So the authorization matrix (every route, 19 kinds of
caller, direct and through the local API gateway) and every route test hold the
document to the API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts

from app.openapi import documented_statuses


@dataclass
class Violation:
    method: str
    path: str
    status: int
    code: str | None
    documented: dict[str, set[str]]

    def __str__(self) -> str:
        what = f"{self.status}" + (f" ({self.code})" if self.code else "")
        listed = {k: sorted(v) for k, v in self.documented.items()}
        return f"{self.method} {self.path} answered {what}; its document lists {listed}"


@dataclass
class ContractLog:
    violations: list[Violation] = field(default_factory=list)
    checked: int = 0
    seen: set[tuple[str, str, int, str | None]] = field(default_factory=set)


class DocumentedResponses:
    """ASGI middleware: check each response against the app's own OpenAPI document."""

    def __init__(self, app: Any, log: ContractLog, fastapi_app: Any) -> None:
        self.app = app
        self.log = log
        self.fastapi_app = fastapi_app
        self._document: dict[str, Any] | None = None
        self._paths: dict[int, str] | None = None

    def _operation(self, scope: dict[str, Any]) -> tuple[str, str] | None:
        """The operation that served the request: the route the router put in the scope
        (the declared route), at its path in the document (with any include prefix)."""
        route = scope.get("route")
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            return None
        if scope["method"] not in route.methods:
            # A partial match: the path is a route's, the method is not (the router's 405
            # belongs to no operation).
            return None
        if self._paths is None:
            self._paths = {
                id(context.original_route): str(context.path_format)
                for context in iter_route_contexts(self.fastapi_app.routes)
            }
        return scope["method"], self._paths.get(id(route), route.path_format)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: list[int] = []
        body = bytearray()
        json_body: list[bool] = [False]

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
                headers = dict(message.get("headers") or [])
                json_body[0] = headers.get(b"content-type", b"").startswith(b"application/json")
            elif (
                message["type"] == "http.response.body"
                and status
                and status[0] >= 400
                and len(body) < 65536
            ):
                body.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        operation = self._operation(scope)
        if operation is None or not status:
            return  # an unknown route (404 from the router) belongs to no operation
        code = None
        if status[0] >= 400 and json_body[0]:
            try:
                code = json.loads(bytes(body))["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "<not the error body>"
        self.check(operation[0], operation[1], status[0], code)

    def check(self, method: str, path: str, status: int, code: str | None) -> None:
        if self._document is None:
            self._document = self.fastapi_app.openapi()
        documented = documented_statuses(self._document, path, method)
        self.log.checked += 1
        self.log.seen.add((method, path, status, code))
        ok = str(status) in documented and (
            status < 400 or (code is not None and code in documented[str(status)])
        )
        if not ok:
            self.log.violations.append(Violation(method, path, status, code, documented))


# One log for the session: every app the service tests build reports into it.
CONTRACT = ContractLog()


def checked(app: Any, log: ContractLog) -> ContractLog:
    """Install the check on ``app`` (before it serves its first request)."""
    app.add_middleware(DocumentedResponses, log=log, fastapi_app=app)
    return log
