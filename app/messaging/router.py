"""The messaging routes. Thin.

Two kinds of caller, two routers:

- :data:`router`, the **homeserver** (Matrix application service API v1), authenticated
  by the homeserver's token (``hs_token``) as ``Authorization: Bearer``
  (:data:`HomeserverCaller`): missing is a 401, wrong is a 403, compared in constant
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
off (no ``HUB_MATRIX_HOMESERVER_URL``) every route here answers 503.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.access.auth import CurrentPrincipal
from app.audit.schemas import Receipt
from app.errors import Forbidden, Unauthenticated
from app.messaging.audit import RoomLedger
from app.messaging.schemas import MediaUpload, Ping, SessionBody, SessionOut, Transaction
from app.messaging.service import RoomAuthority
from app.messaging.sessions import MessagingNotConfigured, MessagingSessions
from app.wiring import NotProvided, provided

router = APIRouter(tags=["messaging-homeserver"])
session_router = APIRouter(prefix="/messaging", tags=["messaging"])

_bearer = HTTPBearer(
    auto_error=False, scheme_name="HomeserverToken", description="The homeserver's hs_token"
)
NO_STORE = {"Cache-Control": "no-store"}


def room_authority(request: Request) -> RoomAuthority:
    try:
        return provided(RoomAuthority)(request)
    except NotProvided:
        raise MessagingNotConfigured() from None


def homeserver_caller(
    authority: Annotated[RoomAuthority, Depends(room_authority)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> RoomAuthority:
    """The room authority, once the caller has shown the homeserver's token."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("The homeserver token is required.")
    if not authority.registration.accepts_homeserver_token(credentials.credentials):
        raise Forbidden("The homeserver token is not valid.")
    return authority


HomeserverCaller = Annotated[RoomAuthority, Depends(homeserver_caller)]


def room_ledger(request: Request) -> RoomLedger:
    try:
        return provided(RoomLedger)(request)
    except NotProvided:
        raise MessagingNotConfigured() from None


def sessions(request: Request) -> MessagingSessions:
    try:
        return provided(MessagingSessions)(request)
    except NotProvided:
        raise MessagingNotConfigured() from None


@router.put("/_matrix/app/v1/transactions/{txn_id}")
def push_transaction(txn_id: str, body: Transaction, authority: HomeserverCaller) -> dict[str, str]:
    authority.handle_transaction(txn_id, body.events)
    return {}


@router.post("/_matrix/app/v1/ping")
def ping(body: Ping, authority: HomeserverCaller) -> dict[str, str]:
    return {}


@router.post("/_matrix/app/unstable/org.hub/uploads")
def report_upload(
    body: MediaUpload,
    authority: HomeserverCaller,
    ledger: Annotated[RoomLedger, Depends(room_ledger)],
) -> dict[str, str]:
    try:
        ledger.record_upload(body.user_id, body.upload_id)
    except ValueError:
        raise Forbidden("Only the hub's accounts upload.", code="not_a_hub_account") from None
    return {}


@session_router.post("/session", response_model=SessionOut)
def open_session(
    who: CurrentPrincipal,
    messaging: Annotated[MessagingSessions, Depends(sessions)],
    response: Response,
    body: SessionBody | None = None,
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
