"""The service's one error type and the handlers that turn errors into JSON.

Every error leaves the service as ``{"error": {"code", "message"}}`` with the right
status. Messages are fixed strings chosen by the service: they never echo request
bodies, tokens or patient data. Unexpected exceptions become an opaque 500, and
request-validation errors name only the offending field locations.

An AWS dependency that is briefly unavailable (throttled, answering 5xx, refusing or
dropping connections: what botocore's own retry checkers call throttled or transient) is
not the service's fault and not the client's: once botocore's retries are spent, the
request is answered ``503 service_unavailable`` with ``Retry-After``, never an opaque 500.
Any other AWS error stays a 500 (a refused permission or a malformed call is a defect).
"""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError
from botocore.retries.standard import (
    RetryContext,
    ThrottledRetryableChecker,
    TransientRetryableChecker,
)
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class HubError(Exception):
    """Base of every error the service reports to a client."""

    status_code = 400
    code = "bad_request"
    message = "The request cannot be served."
    # Seconds a client should wait before retrying; sent as ``Retry-After`` when set.
    retry_after: int | None = None

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        retry_after: int | None = None,
    ):
        if message is not None:
            self.message = message
        if code is not None:
            self.code = code
        if retry_after is not None:
            self.retry_after = retry_after
        super().__init__(self.message)


class Unauthenticated(HubError):
    status_code = 401
    code = "unauthenticated"
    message = "A valid bearer token is required."


class Forbidden(HubError):
    status_code = 403
    code = "forbidden"
    message = "You are not allowed to do this."


class NotFound(HubError):
    status_code = 404
    code = "not_found"
    message = "No such resource."


class Conflict(HubError):
    status_code = 409
    code = "conflict"
    message = "The resource changed or is in a state that does not allow this."


class IdentityProviderUnavailable(HubError):
    """The user pool's signing keys could not be fetched, so no token can be judged."""

    status_code = 503
    code = "identity_provider_unavailable"
    message = "Sign-in keys are unavailable for the moment; retry shortly."


class ServiceUnavailable(HubError):
    """An AWS dependency (DynamoDB, S3, KMS) is throttling or unreachable for the moment;
    what the request did before is safe to retry (writes carry their conditions)."""

    status_code = 503
    code = "service_unavailable"
    message = "A storage or key service is unavailable for the moment; retry shortly."
    retry_after = 1


# A ClientError's HTTP status, when botocore kept it: 5xx answers are transient as a class.
_TRANSIENT_STATUS = (500, 502, 503, 504)


def is_transient_aws_error(exc: BaseException) -> bool:
    """True when ``exc`` is an AWS failure a retry may cure: a throttling or transient
    error code, a 5xx answer, or a connection that failed or dropped (the classification
    botocore's standard retry mode applies to each attempt)."""
    if isinstance(exc, ConnectionError | HTTPClientError):
        return True
    if not isinstance(exc, ClientError):
        return False
    context = RetryContext(attempt_number=1, parsed_response=exc.response, caught_exception=exc)
    if ThrottledRetryableChecker().is_retryable(context):
        return True
    if TransientRetryableChecker().is_retryable(context):
        return True
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status in _TRANSIENT_STATUS


class InvalidRequest(HubError):
    status_code = 422
    code = "invalid_request"
    message = "The request is not valid."


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HubError)
    async def _hub_error(_request: Request, exc: HubError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
        return JSONResponse(
            error_body(exc.code, exc.message), status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Field locations only: the offending values may be patient data.
        fields = sorted({".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()})
        return JSONResponse(
            error_body("invalid_request", "Invalid fields: " + ", ".join(fields)),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        code = codes.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, "No such route." if exc.status_code == 404 else code),
            status_code=exc.status_code,
        )

    async def _aws_unavailable(request: Request, exc: Exception) -> JSONResponse:
        if not is_transient_aws_error(exc):
            return await _unexpected(request, exc)
        # The error's class and code only: AWS messages can quote keys or item values.
        code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
        log.warning("AWS dependency unavailable: %s %s", type(exc).__name__, code)
        return await _hub_error(request, ServiceUnavailable())

    app.add_exception_handler(ClientError, _aws_unavailable)
    app.add_exception_handler(BotoCoreError, _aws_unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # The type only: an exception's text may carry data from the request.
        log.error("unhandled error: %s", type(exc).__name__)
        return JSONResponse(
            error_body("internal_error", "The service could not complete the request."),
            status_code=500,
        )
