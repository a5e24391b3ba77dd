"""Messaging on one machine: Synapse, the hub's application service endpoint and the room
authority, wired together on loopback (tests, the benchmark, later ``hub local up``).

:class:`LocalMessaging` generates the application service registration (fresh tokens),
serves the application service API (:mod:`app.messaging.router`) with uvicorn in a
background thread, starts Synapse (:class:`app.messaging.runner.LocalHomeserver`)
configured to push to it, and builds the :class:`RoomAuthority` over an in-memory
directory. ``stop`` stops both servers. Nothing here is used by the deployed service.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from fastapi import FastAPI

from app.errors import install_error_handlers
from app.messaging.appservice import AppServiceRegistration
from app.messaging.audit import RoomLedger
from app.messaging.client import HomeserverClient
from app.messaging.homeserver import DEFAULT_SERVER_NAME, EmulatedMediaBucket, RateLimitProfile
from app.messaging.identifiers import MatrixNames
from app.messaging.repository import InMemoryRoomDirectory
from app.messaging.router import router as appservice_router
from app.messaging.runner import (
    LOOPBACK,
    LocalHomeserver,
    free_loopback_port,
    local_homeserver_settings,
)
from app.messaging.service import DriftReport, RoomAuthority, log_drift
from app.openapi import document_api
from app.wiring import provide, withdraw


def appservice_app(authority: RoomAuthority) -> FastAPI:
    """A FastAPI app serving only the application service API for ``authority``
    (documented as on the service app: :func:`app.openapi.document_api`)."""
    app = FastAPI(title="Hub application service", openapi_url=None)
    provide(app, RoomAuthority, authority)
    install_error_handlers(app)
    app.include_router(appservice_router)
    document_api(app)
    return app


class ApplicationServiceEndpoint:
    """The application service API in a background uvicorn thread on loopback."""

    def __init__(self, app: Any, port: int, host: str = LOOPBACK) -> None:
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="hub-appservice", daemon=True)
        self.url = f"http://{host}:{port}"

    def start(self, timeout_s: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the application service did not start on {self.url}")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


class LocalMessaging:
    """Synapse + the hub's application service on loopback (see the module docstring)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        server_name: str = DEFAULT_SERVER_NAME,
        rate_limits: RateLimitProfile = "standard",
        on_drift: Callable[[DriftReport], None] | None = None,
        media_bucket: EmulatedMediaBucket | None = None,
    ) -> None:
        names = MatrixNames(server_name)
        as_port = free_loopback_port()
        self.registration = AppServiceRegistration.generate(names, f"http://{LOOPBACK}:{as_port}")
        registration_file = self.registration.write(data_dir / "appservice.yaml")
        self.homeserver = LocalHomeserver(
            local_homeserver_settings(
                data_dir / "synapse",
                [registration_file],
                server_name=server_name,
                rate_limits=rate_limits,
                media_bucket=media_bucket,
            )
        )
        self.client = HomeserverClient(self.homeserver.base_url, self.registration.as_token)
        self.directory = InMemoryRoomDirectory()
        self.authority = RoomAuthority(
            self.client,
            self.directory,
            self.registration,
            client_base_url=self.homeserver.base_url,
            on_drift=on_drift or log_drift,
        )
        self.app = appservice_app(self.authority)
        self.endpoint = ApplicationServiceEndpoint(self.app, as_port)

    @property
    def base_url(self) -> str:
        return self.homeserver.base_url

    def attach_ledger(self, ledger: RoomLedger | None) -> None:
        """Record pushed events and uploads in ``ledger``; ``None`` detaches it again.
        Without a ledger the upload reports answer 503, so the homeserver refuses every
        upload (nothing is stored that the hub could not account for)."""
        if ledger is None:
            withdraw(self.app, RoomLedger)
        else:
            provide(self.app, RoomLedger, ledger)
        self.authority.set_event_observer(ledger)

    def start(self) -> None:
        # The endpoint first: Synapse starts pushing as soon as there is something to push.
        self.endpoint.start()
        try:
            self.homeserver.start()
        except BaseException:
            self.endpoint.stop()
            raise

    def stop(self) -> None:
        try:
            self.homeserver.stop()
        finally:
            self.endpoint.stop()
            self.client.close()

    def __enter__(self) -> LocalMessaging:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class PlatformHomeserver:
    """Synapse for the local platform (``hub local up``): fresh each time, like its moto.

    Writes the application service registration (fresh tokens, owner-only) and the
    homeserver's configuration under ``data_dir`` (whatever an earlier run left there is
    removed first: the emulated tables the rooms were bound in are gone too), and starts
    Synapse in a background thread, so it comes up while the stacks deploy. The hub's
    side (the application service endpoint the registration names, on
    ``appservice_port``) is started by the caller, with the app's settings
    (:meth:`environment`).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        server_name: str = DEFAULT_SERVER_NAME,
        rate_limits: RateLimitProfile = "standard",
    ) -> None:
        import shutil

        if data_dir.exists():
            shutil.rmtree(data_dir)
        data_dir.mkdir(parents=True, mode=0o700)
        self.data_dir = data_dir
        self.names = MatrixNames(server_name)
        self.appservice_port = free_loopback_port()
        self.registration = AppServiceRegistration.generate(
            self.names, f"http://{LOOPBACK}:{self.appservice_port}"
        )
        self.registration_file = self.registration.write(data_dir / "appservice.yaml")
        self.homeserver = LocalHomeserver(
            local_homeserver_settings(
                data_dir / "synapse",
                [self.registration_file],
                server_name=server_name,
                rate_limits=rate_limits,
            )
        )
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return self.homeserver.base_url

    @property
    def appservice_url(self) -> str:
        return self.registration.url

    def start_in_background(self) -> None:
        def run() -> None:
            try:
                self.homeserver.start()
            except BaseException as exc:  # reported by wait_ready
                self._error = exc

        self._thread = threading.Thread(target=run, name="hub-synapse-start", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout_s: float = 90.0) -> float:
        """Block until Synapse answers; returns its start-up time (s). Raises its failure."""
        if self._thread is None:
            self.start_in_background()
        assert self._thread is not None
        self._thread.join(timeout_s)
        if self._error is not None:
            raise self._error
        if self._thread.is_alive() or not self.homeserver.running:
            raise RuntimeError("Synapse did not come up in time")
        return float(self.homeserver.started_in_s or 0.0)

    def environment(self, bot_store: Path | None = None) -> dict[str, str]:
        """The app's messaging settings for this homeserver (``HUB_MATRIX_*``)."""
        env = {
            "HUB_MATRIX_HOMESERVER_URL": self.base_url,
            "HUB_MATRIX_CLIENT_URL": self.base_url,
            "HUB_MATRIX_SERVER_NAME": self.names.server_name,
            "HUB_MATRIX_APPSERVICE_URL": self.appservice_url,
            "HUB_MATRIX_REGISTRATION_FILE": str(self.registration_file),
            "HUB_MATRIX_APPSERVICE_SECRET_ARN": "",
        }
        if bot_store is not None:
            env["HUB_MESSAGING_BOT_STORE"] = str(bot_store)
        return env

    def document(self) -> dict[str, object]:
        """What ``local.json`` says about messaging (no token: those stay in the file)."""
        return {
            "homeserverUrl": self.base_url,
            "serverName": self.names.server_name,
            "appserviceId": self.registration.id,
            "appserviceUrl": self.appservice_url,
            "registrationFile": str(self.registration_file),
            "doctorUserId": f"@doc-<registration number, lower case>:{self.names.server_name}",
            "groupRoomAlias": f"#grp-<group id>:{self.names.server_name}",
            "sessionRoute": "POST /messaging/session",
            "homeserverStartSeconds": self.homeserver.started_in_s,
        }

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=90)
        self.homeserver.stop()
