"""The API's own document, true to the API: every status an operation can answer, with
the error body the service really sends and its codes.

How an operation's statuses are declared (one mechanism, applied by :func:`document_api`
to every route when the app is assembled):

1. **The route declares what its own code and its service can refuse**, with
   ``responses=errors(...)`` on its decorator, naming the errors as the service raises
   them: an error class (``RecordGone``), or an instance where the code or message is
   chosen at the raise site (``Conflict(code="group_closed")``)::

       @router.post("/{group_id}/close", responses=errors(NOT_FOUND_GROUP, ACCESS_DENIED))

2. **A dependency declares what it refuses, once**, with :func:`dependency_errors` next
   to its definition; every route that depends on it (directly or through another
   dependency) inherits those statuses: :data:`app.access.auth.CurrentPrincipal` answers
   401 and 403 (the principal refusals), the record and referral services 503 when the
   deployment has none.

3. **Defaults every route gets**: 422 ``invalid_request`` when it takes any parameter or
   body (request validation), 500 ``internal_error`` (the opaque unexpected error), and on
   authenticated routes the success response's ``Audit-Receipt``, ``Audit-Tree-Head`` and
   ``X-Request-ID`` headers (the receipt middleware's) and what the app's own handlers
   answer for any audited action (``document_api(app, audited=...)``: 503 ``ledger_busy``,
   and 503 ``service_unavailable`` when DynamoDB, S3 or KMS stays throttled or unreachable).

Each error status is documented with :class:`ErrorBody` (``{"error": {"code",
"message"}}``) and one example per code, named by the code. Tests hold the document to
the API: every response the authorization matrix and the route tests see must be a
status its operation lists, and an error's code one of that status's examples.

API Gateway answers some requests itself, before the function runs (401 from the
authorizer, 403 for an unknown route, 413, 429, 502, 504, as ``{"message": ...}``);
:data:`GATEWAY_RESPONSES` documents them for the deployed API (docs/api.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict

from app.errors import HubError


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error the service answers: a stable ``code`` to branch on, a ``message`` for
    people (fixed text: never request content or patient data)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"error": {"code": "access_denied", "message": "Access denied."}}]
        }
    )

    error: ErrorDetail


class GatewayMessage(BaseModel):
    """What API Gateway answers itself, before the function runs."""

    message: str


@dataclass(frozen=True)
class ErrorDoc:
    """One documented error: the status, the code and a message the service sends."""

    status: int
    code: str
    message: str


Documentable = HubError | type[HubError] | ErrorDoc


def as_doc(error: Documentable) -> ErrorDoc:
    if isinstance(error, ErrorDoc):
        return error
    return ErrorDoc(int(error.status_code), str(error.code), str(error.message))


VALIDATION = ErrorDoc(422, "invalid_request", "Invalid fields: body.patient_id")
INTERNAL = ErrorDoc(500, "internal_error", "The service could not complete the request.")

_DESCRIPTIONS = {
    400: "Bad request",
    401: "No valid bearer token",
    403: "Refused",
    404: "Not found",
    409: "Conflict with the current state",
    410: "Gone",
    411: "Length required",
    413: "Too large",
    415: "Unsupported media type",
    422: "Invalid request",
    500: "Unexpected error (opaque)",
    503: "Unavailable in this deployment, or busy: retry",
}

# API Gateway's own answers in front of the deployed function (docs/api.md).
GATEWAY_RESPONSES: dict[int, str] = {
    401: "Unauthorized",
    403: "Missing Authentication Token",
    413: "Request Too Long",
    429: "Too Many Requests",
    502: "Internal server error",
    504: "Endpoint request timed out",
}

AUDIT_HEADERS: dict[str, Any] = {
    "Audit-Receipt": {
        "description": 'The ledger receipts of the audited actions: `<leaf index>;event="<id>"`, '
        "comma-separated, in order.",
        "schema": {"type": "string"},
    },
    "Audit-Tree-Head": {
        "description": 'The latest signed tree head: `size=<n>;root="<base64>";timestamp=<ms>`.',
        "schema": {"type": "string"},
    },
    "X-Request-ID": {
        "description": "The request id written into each ledger entry of this request.",
        "schema": {"type": "string"},
    },
}


def errors(*declared: Documentable) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each error's status with the error body and one
    example per code. Several errors of one status share it."""
    by_status: dict[int, list[ErrorDoc]] = {}
    for item in declared:
        doc = as_doc(item)
        by_status.setdefault(doc.status, [])
        if all(d.code != doc.code for d in by_status[doc.status]):
            by_status[doc.status].append(doc)
    return {status: _response(docs) for status, docs in sorted(by_status.items())}


ERROR_BODY_REF = "#/components/schemas/ErrorBody"


def _response(docs: Iterable[ErrorDoc]) -> dict[str, Any]:
    docs = sorted(docs, key=lambda d: d.code)
    status = docs[0].status
    return {
        "description": _DESCRIPTIONS.get(status, "Error") + ": " + ", ".join(d.code for d in docs),
        "content": {
            "application/json": {
                # the schema is referenced, not a response model: the document names it
                # once (components), whatever FastAPI computed for the route beforehand
                "schema": {"$ref": ERROR_BODY_REF},
                "examples": {
                    d.code: {
                        "summary": d.message,
                        "value": {"error": {"code": d.code, "message": d.message}},
                    }
                    for d in docs
                },
            }
        },
    }


def ok_example(
    example: Any, status: int = 200, media_type: str = "application/json"
) -> dict[int | str, dict[str, Any]]:
    """A success response's example, for routes that return plain dicts."""
    return {status: {"content": {media_type: {"example": example}}}}


_DEPENDENCY_ERRORS: dict[Callable[..., Any], tuple[ErrorDoc, ...]] = {}
_DEPENDENCY_HEADERS: dict[Callable[..., Any], Mapping[str, Any]] = {}


def dependency_errors(
    dependency: Callable[..., Any],
    *declared: Documentable,
    success_headers: Mapping[str, Any] | None = None,
) -> None:
    """Declare what ``dependency`` refuses (and the headers a success then carries);
    every route depending on it inherits them."""
    _DEPENDENCY_ERRORS[dependency] = tuple(as_doc(e) for e in declared)
    if success_headers:
        _DEPENDENCY_HEADERS[dependency] = dict(success_headers)


def declared_errors(route: APIRoute) -> list[ErrorDoc]:
    """Every error ``route`` can answer: its own declaration, its dependencies' (at any
    depth), 422 when it takes parameters or a body, and 500."""
    found: list[ErrorDoc] = []
    for status, response in route.responses.items():
        examples = (
            response.get("content", {}).get("application/json", {}).get("examples", {})
            if isinstance(response, Mapping)
            else {}
        )
        for example in examples.values():
            body = example.get("value", {}).get("error", {})
            if "code" in body:
                found.append(ErrorDoc(int(status), str(body["code"]), str(body["message"])))
    for call in _dependency_calls(route):
        found += _DEPENDENCY_ERRORS.get(call, ())
    dependant = route.dependant
    if (
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.body_params
        or route.body_field is not None
        or any(_takes_parameters(d) for d in dependant.dependencies)
    ):
        found.append(VALIDATION)
    found.append(INTERNAL)
    return found


def _takes_parameters(dependant: Any) -> bool:
    return bool(
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.body_params
        or any(_takes_parameters(d) for d in dependant.dependencies)
    )


def _dependency_calls(route: APIRoute) -> Iterator[Callable[..., Any]]:
    stack = list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        if dependant.call is not None:
            yield dependant.call
        stack += dependant.dependencies


def api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """The app's routes as declared, through included routers (FastAPI keeps an included
    router as one entry that builds its routes' effective copies when first used)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from api_routes(inner.routes)
        elif isinstance(route, APIRoute):
            yield route


def document_api(app: FastAPI, *, audited: Iterable[Documentable] = ()) -> None:
    """Give every route of ``app`` its full set of statuses (see the module docstring).
    ``audited``: what any route whose actions are audited (a route whose dependencies
    declare the receipt headers) can also answer, from the app's own handlers (the
    ledger's 503 ``ledger_busy``). Call once, after every router is included and before
    the app serves a request (the effective routes FastAPI builds then copy each route's
    responses). Idempotent: the routers are module-level, shared by every app a process
    builds."""
    audited = tuple(audited)
    for route in api_routes(app.routes):
        if not route.include_in_schema:
            continue
        headers: dict[str, Any] = {}
        for call in _dependency_calls(route):
            headers.update(_DEPENDENCY_HEADERS.get(call, {}))
        declared = errors(*declared_errors(route), *(audited if headers else ()))
        for status, response in list(route.responses.items()):
            if int(status) < 400:
                declared[status] = response  # a success response the route describes
        success = route.status_code or 200
        if headers:
            response = dict(declared.get(success, {}))
            response["headers"] = {**headers, **response.get("headers", {})}
            declared[success] = response
        route.responses = declared
    app.openapi_schema = None
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(error_schema.pop("$defs", {}))
        components["ErrorBody"] = error_schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def documented_statuses(document: Mapping[str, Any], path: str, method: str) -> dict[str, set[str]]:
    """Status -> the error codes an operation of an OpenAPI document lists (empty for a
    success status). Tests check responses against it."""
    operation = document["paths"][path][method.lower()]
    out: dict[str, set[str]] = {}
    for status, response in operation.get("responses", {}).items():
        examples = response.get("content", {}).get("application/json", {}).get("examples", {})
        out[str(status)] = {
            str(e["value"]["error"]["code"])
            for e in examples.values()
            if isinstance(e.get("value"), Mapping) and "error" in e["value"]
        }
    return out


__all__ = [
    "AUDIT_HEADERS",
    "GATEWAY_RESPONSES",
    "ErrorBody",
    "ErrorDoc",
    "GatewayMessage",
    "dependency_errors",
    "document_api",
    "documented_statuses",
    "errors",
    "ok_example",
]
