"""The messaging routes. Thin.

Two kinds of caller, two routers:

- :data:`router`, the **homeserver** (Matrix application service API v1), authenticated
  by the homeserver's token (``hs_token``) as ``Authorization: Bearer``
  (:data:`HomeserverToken`): missing is a 401, wrong is a 403, compared in constant
  time; the legacy ``?access_token=`` query parameter is not accepted (tokens in URLs end
  up in logs). Not a Cognito token: in AWS these routes are reached on the private path
  only (an internal load balancer in the VPC, ``app.lambda_handler.appservice_handler``);
  the public API's Cognito authorizer refuses the homeserver's token before the function
  runs.

  - ``PUT /_matrix/app/v1/transactions/{txnId}``: events pushed by the homeserver; the
    membership events go to :meth:`RoomAuthority.handle_transaction`, which reverts what
    the hub did not decide, and every event to the ledger. Answers ``{}`` once handled
    (the homeserver retries until it gets a 200; a repeated transaction id is
    acknowledged without being handled again).
  - ``POST /_matrix/app/v1/ping``: the homeserver's reachability check.
  - ``POST /_matrix/app/unstable/org.hub/uploads``: the homeserver's policy module
    reports a media upload before storing it; the upload is refused unless this answers
    200 (the ledger entry exists first).

- :data:`session_router`, **doctors** (Cognito token, :data:`CurrentPrincipal`):
  ``POST /messaging/session``, a Matrix session after the usual checks.

Errors use the hub's error body (the homeserver reads only the status). With messaging
off (no ``HUB_MATRIX_HOMESERVER_URL``) every route here answers 503. Each route and
dependency declares what it answers (:mod:`app.openapi`), so the API document lists
it: the token's 401 and 403, ``messaging_not_configured``, the session's
``access_denied`` and ``homeserver_unavailable``, the upload's ``not_a_hub_account``.
The routes that record room events in the ledger (transactions, uploads) carry its
receipts; the ping records nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.access.auth import ACCESS_DENIED, CurrentPrincipal
from app.audit.schemas import Receipt
from app.errors import Forbidden, Unauthenticated
from app.messaging.audit import RoomLedger
from app.messaging.schemas import MediaUpload, Ping, SessionBody, SessionOut, Transaction
from app.messaging.service import RoomAuthority
from app.messaging.sessions import (
    HomeserverUnreachable,
    MessagingNotConfigured,
    MessagingSessions,
)
from app.openapi import AUDIT_HEADERS, dependency_errors, errors, ok_example
from app.wiring import NotProvided, provided

router = APIRouter(tags=["messaging-homeserver"])
session_router = APIRouter(prefix="/messaging", tags=["messaging"])

_bearer = HTTPBearer(
    auto_error=False, scheme_name="HomeserverToken", description="The homeserver's hs_token"
)
NO_STORE = {"Cache-Control": "no-store"}

# Declared for the API document; each refusal raises a fresh error with the same code.
TOKEN_MISSING = Unauthenticated("The homeserver token is required.")
TOKEN_REFUSED = Forbidden("The homeserver token is not valid.")
NOT_A_HUB_ACCOUNT = Forbidden("Only the hub's accounts upload.", code="not_a_hub_account")
# What the application service API answers once handled (the homeserver reads the status).
HANDLED = ok_example({})


def room_authority(request: Request) -> RoomAuthority:
    try:
        return provided(RoomAuthority)(request)
    except NotProvided:
        raise MessagingNotConfigured() from None


dependency_errors(room_authority, MessagingNotConfigured)


def homeserver_token(
    authority: Annotated[RoomAuthority, Depends(room_authority)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> RoomAuthority:
    """The room authority, once the caller has shown the homeserver's token."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated(TOKEN_MISSING.message)
    if not authority.registration.accepts_homeserver_token(credentials.credentials):
        raise Forbidden(TOKEN_REFUSED.message)
    return authority


dependency_errors(homeserver_token, TOKEN_MISSING, TOKEN_REFUSED)
HomeserverToken = Annotated[RoomAuthority, Depends(homeserver_token)]


def homeserver_caller(authority: HomeserverToken) -> RoomAuthority:
    """The homeserver, on a route that records room events in the ledger: the response
    carries their receipts (and the ledger's 503 ``ledger_busy`` may answer)."""
    return authority


dependency_errors(homeserver_caller, success_headers=AUDIT_HEADERS)
HomeserverCaller = Annotated[RoomAuthority, Depends(homeserver_caller)]


def room_ledger(request: Request) -> RoomLedger:
    try:
        return provided(RoomLedger)(request)
    except NotProvided:
        raise MessagingNotConfigured() from None


dependency_errors(room_ledger, MessagingNotConfigured)


def sessions(request: Request) -> MessagingSessions:
    try:
        return provided(MessagingSessions)(request)
    except NotProvided:
        raise MessagingNotConfigured() from None


dependency_errors(sessions, MessagingNotConfigured)


@router.put("/_matrix/app/v1/transactions/{txn_id}", responses=HANDLED)
def push_transaction(txn_id: str, body: Transaction, authority: HomeserverCaller) -> dict[str, str]:
    authority.handle_transaction(txn_id, body.events)
    return {}


@router.post("/_matrix/app/v1/ping", responses=HANDLED)
def ping(body: Ping, authority: HomeserverToken) -> dict[str, str]:
    return {}


@router.post(
    "/_matrix/app/unstable/org.hub/uploads", responses={**HANDLED, **errors(NOT_A_HUB_ACCOUNT)}
)
def report_upload(
    body: MediaUpload,
    authority: HomeserverCaller,
    ledger: Annotated[RoomLedger, Depends(room_ledger)],
) -> dict[str, str]:
    try:
        ledger.record_upload(body.user_id, body.upload_id)
    except ValueError:
        raise Forbidden(NOT_A_HUB_ACCOUNT.message, code=NOT_A_HUB_ACCOUNT.code) from None
    return {}


@session_router.post(
    "/session",
    response_model=SessionOut,
    responses=errors(ACCESS_DENIED, HomeserverUnreachable),
)
def open_session(
    who: CurrentPrincipal,
    messaging: Annotated[MessagingSessions, Depends(sessions)],
    response: Response,
    body: Annotated[
        SessionBody | None,
        Body(
            openapi_examples={
                "device": {"summary": "A named device", "value": {"device_name": "Ward laptop"}},
                "default": {"summary": "The default device name", "value": {}},
            }
        ),
    ] = None,
) -> SessionOut:
    session, receipt = messaging.open(who, (body or SessionBody()).device_name)
    response.headers.update(NO_STORE)
    return SessionOut(
        homeserver_url=session.homeserver_url,
        server_name=messaging.authority.names.server_name,
        user_id=session.user_id,
        device_id=session.device_id,
        access_token=session.access_token,
        audit_receipt=Receipt.of(receipt),
    )
