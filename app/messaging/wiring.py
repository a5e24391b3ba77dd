"""The room authority as the deployed service builds it from its settings.

- the registration (the two application service tokens): in local mode from the file the
  local platform wrote (``HUB_MATRIX_REGISTRATION_FILE``), in a deployment from Secrets
  Manager (``HUB_MATRIX_APPSERVICE_SECRET_ARN``: ``{"as_token": ..., "hs_token": ...}``),
  read once when the app is built;
- the homeserver client on ``HUB_MATRIX_HOMESERVER_URL``, with the ``as_token``;
- the directory in the groups table (:class:`DynamoRoomDirectory`).

Raises :class:`MessagingMisconfigured` (naming the setting, never a token) if neither
source gives a valid registration: the service then fails to start rather than run a
room authority that the homeserver would refuse.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.messaging.appservice import AppServiceRegistration, InvalidRegistration
from app.messaging.client import HomeserverClient
from app.messaging.identifiers import MatrixNames
from app.messaging.repository import DynamoRoomDirectory
from app.messaging.service import DriftReport, RoomAuthority, log_drift
from app.settings import Settings


class MessagingMisconfigured(RuntimeError):
    """The messaging settings do not give a usable application service registration."""


def load_registration(settings: Settings, secrets: Any = None) -> AppServiceRegistration:
    names = MatrixNames(settings.matrix_server_name)
    url = settings.matrix_appservice_url or "http://127.0.0.1:9"
    try:
        if settings.matrix_registration_file:
            return AppServiceRegistration.load(Path(settings.matrix_registration_file), names)
        if settings.matrix_appservice_secret_arn and secrets is not None:
            raw = secrets.get_secret_value(SecretId=settings.matrix_appservice_secret_arn)
            tokens = json.loads(raw["SecretString"])
            return AppServiceRegistration(
                names=names,
                url=url,
                as_token=str(tokens.get("as_token", "")),
                hs_token=str(tokens.get("hs_token", "")),
            )
    except (InvalidRegistration, ValueError, KeyError) as exc:
        raise MessagingMisconfigured(
            f"the application service registration is not usable ({type(exc).__name__})"
        ) from None
    raise MessagingMisconfigured(
        "messaging needs HUB_MATRIX_REGISTRATION_FILE (local) or "
        "HUB_MATRIX_APPSERVICE_SECRET_ARN (deployment)"
    )


def build_room_authority(
    settings: Settings,
    dynamodb_client: Any,
    *,
    secrets: Any = None,
    transport: Any = None,
    on_drift: Callable[[DriftReport], None] = log_drift,
) -> RoomAuthority:
    registration = load_registration(settings, secrets)
    client = HomeserverClient(
        settings.matrix_homeserver_url,
        registration.as_token,
        timeout_s=settings.matrix_timeout_seconds,
        transport=transport,
    )
    return RoomAuthority(
        client,
        DynamoRoomDirectory(dynamodb_client, settings.table_groups),
        registration,
        client_base_url=settings.matrix_client_url or settings.matrix_homeserver_url,
        on_drift=on_drift,
    )
