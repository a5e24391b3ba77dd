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

    from moto.server import ThreadedMotoServer

    # werkzeug logs every request to stderr; the progress display is ours.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    if port is None:
        port = _free_port(host)
    else:
        _check_port_free(host, port)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    return server, f"http://{bound_host}:{bound_port}"


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
