"""The application service API the homeserver calls (Matrix AS API v1). Thin.

- ``PUT /_matrix/app/v1/transactions/{txnId}``: events pushed by the homeserver; the
  membership events go to :meth:`RoomAuthority.handle_transaction`, which reverts what
  the hub did not decide. Answers ``{}`` once handled (the homeserver retries until it
  gets a 200; a repeated transaction id is acknowledged without being handled again).
- ``POST /_matrix/app/v1/ping``: the homeserver's reachability check.

Both require the homeserver's token (``hs_token``) as ``Authorization: Bearer``
(:data:`HomeserverCaller`): missing is a 401, wrong is a 403, compared in constant
time. The legacy ``?access_token=`` query parameter is not accepted (tokens in URLs
end up in logs). Errors use the hub's error body; the homeserver reads only the status.

Not yet included in :func:`app.main.create_app`: the wiring step mounts it and puts the
:class:`RoomAuthority` where :func:`room_authority` finds it (``app.state.room_authority``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.errors import Forbidden, Unauthenticated
from app.messaging.schemas import Ping, Transaction
from app.messaging.service import RoomAuthority

router = APIRouter(prefix="/_matrix/app/v1", tags=["messaging"])

_bearer = HTTPBearer(auto_error=False)


def room_authority(request: Request) -> RoomAuthority:
    authority = getattr(request.app.state, "room_authority", None)
    if not isinstance(authority, RoomAuthority):
        raise RuntimeError("the room authority is not configured")
    return authority


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


@router.put("/transactions/{txn_id}")
def push_transaction(txn_id: str, body: Transaction, authority: HomeserverCaller) -> dict[str, str]:
    authority.handle_transaction(txn_id, body.events)
    return {}


@router.post("/ping")
def ping(body: Ping, authority: HomeserverCaller) -> dict[str, str]:
    return {}
