"""Runs Synapse locally: a subprocess on loopback with SQLite, configured by the project.

:func:`local_homeserver_settings` chooses a free loopback port and fresh secrets;
:class:`LocalHomeserver` writes ``homeserver.yaml`` (from
:func:`app.messaging.homeserver.homeserver_config`), the log config and a signing key
into its data directory, starts ``python -m synapse.app.homeserver`` and returns once
``/_matrix/client/versions`` answers (about two seconds on a fresh database). ``stop``
terminates it (and kills it if it does not exit in time). Used by the tests'
session fixture and the benchmark; the local platform will use it too.

Nothing here is used by the deployed service (in AWS Synapse runs on ECS).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx
import yaml

from app.messaging.homeserver import (
    DEFAULT_SERVER_NAME,
    EmulatedMediaBucket,
    HomeserverSettings,
    RateLimitProfile,
    homeserver_config,
    log_config,
    signing_key_file_text,
)

LOOPBACK = "127.0.0.1"
READY_PATH = "/_matrix/client/versions"
DEFAULT_START_TIMEOUT_S = 60.0


class HomeserverFailed(RuntimeError):
    """Synapse is not installed, exited during start-up, or did not answer in time."""


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def local_homeserver_settings(
    data_dir: Path,
    appservice_files: Sequence[Path],
    *,
    server_name: str = DEFAULT_SERVER_NAME,
    port: int | None = None,
    rate_limits: RateLimitProfile = "standard",
    media_bucket: EmulatedMediaBucket | None = None,
) -> HomeserverSettings:
    """Settings for a homeserver on a loopback port with secrets generated now (media in
    the data directory, or in ``media_bucket`` on the emulator's S3)."""
    port = port or free_loopback_port()
    return HomeserverSettings(
        server_name=server_name,
        bind_address=LOOPBACK,
        port=port,
        public_baseurl=f"http://{LOOPBACK}:{port}/",
        data_dir=data_dir,
        appservice_files=tuple(appservice_files),
        macaroon_secret_key=secrets.token_urlsafe(48),
        form_secret=secrets.token_urlsafe(48),
        rate_limits=rate_limits,
        media_bucket=media_bucket,
    )


class LocalHomeserver:
    """One Synapse process for the given settings (see the module docstring)."""

    def __init__(self, settings: HomeserverSettings, *, python: str = sys.executable) -> None:
        self.settings = settings
        self._python = python
        self._process: subprocess.Popen[bytes] | None = None
        self.started_in_s: float | None = None

    @property
    def base_url(self) -> str:
        return self.settings.public_baseurl.rstrip("/")

    @property
    def config_path(self) -> Path:
        return self.settings.data_dir / "homeserver.yaml"

    @property
    def log_path(self) -> Path:
        return self.settings.data_dir / "homeserver.log"

    def write_config(self) -> Path:
        """Write the configuration files; an existing signing key is kept."""
        data_dir = self.settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.settings.media_store_path.mkdir(exist_ok=True)
        if not self.settings.signing_key_path.exists():
            # The key is a secret of the server: owner-only, created that way.
            fd = os.open(self.settings.signing_key_path, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(signing_key_file_text(secrets.token_bytes(32)))
        self.settings.log_config_path.write_text(yaml.safe_dump(log_config()))
        self.config_path.write_text(yaml.safe_dump(homeserver_config(self.settings)))
        self.config_path.chmod(0o600)  # it holds the macaroon and form secrets
        return self.config_path

    def start(self, timeout_s: float = DEFAULT_START_TIMEOUT_S) -> None:
        if self._process is not None:
            raise HomeserverFailed("the homeserver is already running")
        if importlib.util.find_spec("synapse") is None:
            raise HomeserverFailed(
                "matrix-synapse is not installed: pip install -c constraints.txt -e '.[messaging]'"
            )
        self.write_config()
        started = time.monotonic()
        log = self.log_path.open("ab")
        try:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [self._python, "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.settings.data_dir,
            )
        finally:
            log.close()
        try:
            self._wait_ready(started + timeout_s)
        except BaseException:
            self.stop()
            raise
        self.started_in_s = time.monotonic() - started

    def _wait_ready(self, deadline: float) -> None:
        assert self._process is not None
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            while True:
                if self._process.poll() is not None:
                    raise HomeserverFailed(
                        f"Synapse exited with {self._process.returncode}:\n{self._log_tail()}"
                    )
                try:
                    if client.get(READY_PATH).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise HomeserverFailed(f"Synapse did not answer in time:\n{self._log_tail()}")
                time.sleep(0.05)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> LocalHomeserver:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
