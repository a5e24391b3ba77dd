"""The embedded AWS: a moto server on loopback, started in this process.

``start_moto_server`` returns the running server and its endpoint URL; stop it with
``server.stop()``. It binds to 127.0.0.1 by default and never to a public interface
unless the caller asks.
"""

from __future__ import annotations

import socket
from typing import Any


def start_moto_server(port: int | None = None, host: str = "127.0.0.1") -> tuple[Any, str]:
    """Start a ThreadedMotoServer; ``port=None`` picks a free port.

    Raises:
        OSError: the port is taken.
    """
    import logging
    import os

    from moto.server import ThreadedMotoServer

    # moto checks TOTP codes (against the secret it hands out) only when asked to.
    os.environ.setdefault("MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP", "true")
    # werkzeug logs every request to stderr; the progress display is ours.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    memoize_moto_routing()
    # DynamoDB's transaction isolation, which the audit ledger's sequencing relies on.
    from infra.emulator.dynamodb_isolation import serialize_moto_dynamodb

    serialize_moto_dynamodb()

    if port is None:
        port = _free_port(host)
    else:
        _check_port_free(host, port)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    return server, f"http://{bound_host}:{bound_port}"


def memoize_moto_routing() -> None:
    """Cache moto's host-to-backend routing; idempotent, process-wide.

    For every request, moto's server lists its package directory and tries its URL
    patterns one by one (tens of milliseconds), holding a lock that serialises all
    requests. The answer only depends on the request's host name, so it is cached per
    host. This changes no behaviour, only speed: deploying the three stacks makes a few
    thousand requests. Every moto server in this process benefits (the test suite's too).
    """
    try:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    except ImportError:  # an endpoint that is not moto needs nothing
        return
    if getattr(DomainDispatcherApplication, "_hub_routing_memoized", False):
        return
    original = DomainDispatcherApplication.get_backend_for_host
    cache: dict[str, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host is None:
            return None
        if host in cache:
            return cache[host]
        backend = original(self, host)
        if backend is not None:
            cache[host] = backend
        return backend

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]
    DomainDispatcherApplication._hub_routing_memoized = True  # type: ignore[attr-defined]


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _check_port_free(host: str, port: int) -> None:
    # The werkzeug server thread would die with the error where nobody sees it.
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as error:
            raise OSError(f"port {port} on {host} is already in use: {error}") from None


def endpoint_reachable(endpoint_url: str, timeout: float = 1.0) -> bool:
    """True if something accepts TCP connections at the endpoint's host and port."""
    from urllib.parse import urlparse

    parsed = urlparse(endpoint_url)
    if not parsed.hostname:
        return False
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False
