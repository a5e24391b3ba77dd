"""The embedded AWS: a moto server on loopback, started in this process, and the
harness pieces every caller shares (free ports, emulator credentials, reachability).

``start_moto_server`` is the one way this project starts moto: the local platform, the
standalone platform, the test suite's session fixture and the benchmarks all call it.
It always installs, before the server takes a request:

- DynamoDB's isolation (:mod:`infra.emulator.dynamodb_isolation`), which the audit
  ledger's gap-free sequencing relies on; a moto started without it can lose writes
  that DynamoDB never would;
- Cognito's SRP challenge naming the user by username (:mod:`infra.emulator.cognito_srp`),
  without which a standard browser client cannot sign in;
- the routing memoisation (:func:`memoize_moto_routing`), which only changes speed.

It binds to 127.0.0.1 by default and never to a public interface unless the caller
asks. :data:`EMULATOR_CREDENTIALS` are the fake credentials every emulator accepts;
:func:`use_emulator_credentials` makes sure nothing run against the emulator can reach
a real account with the operator's own.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any
from urllib.parse import urlparse

LOOPBACK = "127.0.0.1"
REGION = "ap-east-1"
EMULATOR_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


def start_moto_server(port: int | None = None, host: str = LOOPBACK) -> tuple[Any, str]:
    """Start a ThreadedMotoServer with DynamoDB isolation and routing memoisation.

    Args:
        port: the port to listen on; ``None`` picks a free one.
        host: the interface; loopback unless the caller asks otherwise.

    Returns:
        (the running server, its endpoint URL); stop it with ``server.stop()``.

    Raises:
        OSError: the port is taken (checked first: werkzeug's thread would die with
            the error where nobody sees it).
    """
    from moto.server import ThreadedMotoServer

    # moto checks TOTP codes (against the secret it hands out) only when asked to.
    os.environ.setdefault("MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP", "true")
    # The program declares no EC2 instance: loading moto's catalogue of machine images
    # would cost seconds per account and region on the first EC2 call (the messaging VPC).
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    from infra.emulator.cognito_srp import srp_user_id_is_the_username
    from infra.emulator.cognito_token import serve_token_endpoint
    from infra.emulator.dynamodb_isolation import serialize_moto_dynamodb

    quiet_moto_logs()
    memoize_moto_routing()
    serialize_moto_dynamodb()
    srp_user_id_is_the_username()
    serve_token_endpoint()
    if port is None:
        port = free_port(host)
    else:
        check_port_free(host, port)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    return server, f"http://{bound_host}:{bound_port}"


def quiet_moto_logs() -> None:
    """werkzeug logs every request moto serves; the callers' own output is what matters."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def memoize_moto_routing() -> None:
    """Cache moto's host-to-backend routing; idempotent, process-wide.

    For every request, moto's server lists its package directory and tries its URL
    patterns one by one (tens of milliseconds), holding a lock that serialises all
    requests. The answer only depends on the request's host name, so it is cached per
    host. This changes no behaviour, only speed: deploying the three stacks makes a few
    thousand requests. Every moto server in this process benefits.
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


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on right now (the OS's choice; another process could
    still take it before the caller binds, which loopback tests accept)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def check_port_free(host: str, port: int) -> None:
    """Raises OSError naming the port when something already holds it."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as error:
            raise OSError(f"port {port} on {host} is already in use: {error}") from None


def endpoint_reachable(endpoint_url: str, timeout: float = 1.0) -> bool:
    """True if something accepts TCP connections at the endpoint's host and port."""
    parsed = urlparse(endpoint_url)
    if not parsed.hostname:
        return False
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def use_emulator_credentials() -> None:
    """Point boto3 at fake credentials: nothing run against the emulator can reach a real
    account, even if the operator's shell holds real ones."""
    os.environ.update(EMULATOR_CREDENTIALS)


def default_emulator_credentials() -> None:
    """Fill in fake credentials only where none are set (emulators accept any)."""
    for key, value in EMULATOR_CREDENTIALS.items():
        os.environ.setdefault(key, value)
