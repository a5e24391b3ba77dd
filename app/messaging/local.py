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
from app.messaging.client import HomeserverClient
from app.messaging.homeserver import DEFAULT_SERVER_NAME, RateLimitProfile
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
from app.wiring import provide


def appservice_app(authority: RoomAuthority) -> FastAPI:
    """A FastAPI app serving only the application service API for ``authority``."""
    app = FastAPI(title="Hub application service", openapi_url=None)
    provide(app, RoomAuthority, authority)
    install_error_handlers(app)
    app.include_router(appservice_router)
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
        self.endpoint = ApplicationServiceEndpoint(appservice_app(self.authority), as_port)

    @property
    def base_url(self) -> str:
        return self.homeserver.base_url

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
