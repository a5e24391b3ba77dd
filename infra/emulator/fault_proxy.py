"""A fault proxy between the service and the emulator: AWS slowed, refusing, or gone.

:class:`FaultProxy` listens on loopback and forwards every HTTP request to the emulator
(moto) unchanged; the service is pointed at it (``AWS_ENDPOINT_URL``) instead of at moto.
Calls are told apart by their SigV4 credential scope (``.../<region>/<service>/aws4_request``
in the ``Authorization`` header), so faults hit only the services named in ``services``
(by default the ones the sharing service calls per request: DynamoDB, S3, KMS) and only
header-signed calls: a presigned URL (a doctor's client putting or getting a shard) is
passed through, as its faults are the client's transfer code's business.

Faults, changed at any time by the caller (:meth:`FaultProxy.set_faults`):

- **slow**: each faulted call waits a uniform 0 .. ``delay_s`` seconds before it is sent;
- **refusing**: a share of faulted calls is never sent: the proxy answers with the
  service's own throttling or unavailability error, in the service's protocol
  (DynamoDB and KMS JSON ``__type``; S3 XML ``SlowDown``), half throttling (HTTP 400)
  and half unavailable (HTTP 503), as AWS does under pressure;
- **gone**: :meth:`FaultProxy.down` closes the listener (new connections are refused)
  and drops every open connection (calls in flight lose their answers);
  :meth:`FaultProxy.up` listens again on the same port. With the emulator's own
  listener stopped and started alongside (the fault benchmark does), that is what a
  service sees of an emulator restarting.

Counts of what was injected are in :attr:`FaultProxy.injected`. Loopback only; for
benchmarks and tests, never in front of a real endpoint.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

from infra.emulator.server import LOOPBACK, free_port

FAULTED_SERVICES = frozenset({"dynamodb", "s3", "kms"})
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}

# The error each protocol answers with: (HTTP status, content type, body), by service.
_JSON_ERRORS = {
    "dynamodb": {
        400: ("com.amazonaws.dynamodb.v20120810#ThrottlingException", "Rate exceeded"),
        503: ("com.amazonaws.dynamodb.v20120810#ServiceUnavailable", "Service unavailable"),
    },
    "kms": {
        400: ("ThrottlingException", "Rate exceeded"),
        503: ("KMSInternalException", "Service unavailable"),
    },
}


def refusal(service: str, throttled: bool) -> tuple[int, str, bytes]:
    """What ``service`` answers when it throttles (``throttled``) or is unavailable."""
    if service in _JSON_ERRORS:
        status = 400 if throttled else 503
        kind, message = _JSON_ERRORS[service][status]
        body = f'{{"__type": "{kind}", "message": "{message}"}}'
        return status, "application/x-amz-json-1.0", body.encode()
    code = "SlowDown" if throttled else "ServiceUnavailable"
    body = f"<Error><Code>{code}</Code><Message>Please reduce your request rate.</Message></Error>"
    return 503, "application/xml", body.encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connections dropped on purpose (:meth:`FaultProxy.down`) are not news."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def setup(self) -> None:
        super().setup()
        self.server.proxy._opened(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.proxy._closed(self.connection)

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self) -> None:
        proxy = self.server.proxy
        body = self._body()
        if proxy.is_down:
            self.close_connection = True
            return  # dropped: no answer at all
        match = _SCOPE.search(self.headers.get("Authorization", ""))
        service = match.group(1) if match else None
        refused = proxy._fault_for(service)
        if refused is not None:
            status, content_type, payload = refused
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
        except OSError:
            proxy.count("dropped (emulator gone)")
            self.close_connection = True
            return
        finally:
            upstream.close()
        if proxy.is_down:  # went away while the call was in flight: the answer is lost
            proxy.count("answer lost (emulator gone)")
            self.close_connection = True
            return
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        length = response.getheader("Content-Length")
        if self.command == "HEAD":
            if length is not None:
                self.send_header("Content-Length", length)
        else:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _forward


class FaultProxy:
    """Forwards to ``upstream`` (the emulator's endpoint URL); see the module docstring.

    Args:
        upstream: the emulator's endpoint, ``http://127.0.0.1:<port>``.
        services: the SigV4 service names whose header-signed calls are faulted.
        seed: for the random choices (which calls are refused, how long each waits).
    """

    def __init__(
        self,
        upstream: str,
        *,
        services: Iterable[str] = FAULTED_SERVICES,
        seed: int = 16,
    ):
        parsed = urlparse(upstream)
        if parsed.hostname is None or parsed.port is None:
            raise ValueError(f"{upstream!r} is not an http://host:port endpoint")
        self.upstream_host, self.upstream_port = parsed.hostname, parsed.port
        self.services = frozenset(services)
        self.delay_s = 0.0
        self.refuse_share = 0.0
        self.injected: Counter[str] = Counter()
        self.is_down = False
        self._rng = random.Random(seed)  # noqa: S311 - which calls to fault, not secrets
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, port: int | None = None) -> str:
        """Listen (on ``port``, or a free one; the same one again after :meth:`down`)."""
        self.port = port or self.port or free_port()
        server = _Server((LOOPBACK, self.port), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        self.is_down = False
        return self.endpoint

    def stop(self) -> None:
        self.down()

    def down(self) -> None:
        """Stop listening and drop every open connection (answers in flight are lost)."""
        self.is_down = True
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            open_now = list(self._connections)
        for conn in open_now:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def up(self) -> None:
        """Listen again on the same port."""
        self.start(self.port)

    def set_faults(self, *, delay_s: float = 0.0, refuse_share: float = 0.0) -> None:
        self.delay_s, self.refuse_share = delay_s, refuse_share

    def count(self, what: str) -> None:
        with self._lock:
            self.injected[what] += 1

    # -- used by the handler ----------------------------------------------------------------

    def _opened(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

    def _fault_for(self, service: str | None) -> tuple[int, str, bytes] | None:
        """Waits if slow; returns the refusal to answer instead of forwarding, if any."""
        if service not in self.services:
            return None
        with self._lock:
            wait = self._rng.random() * self.delay_s
            refuse = self._rng.random() < self.refuse_share
            throttled = self._rng.random() < 0.5
        if wait:
            self.count("slowed")
            time.sleep(wait)
        if not refuse:
            return None
        self.count(f"refused ({'throttled' if throttled else 'unavailable'})")
        assert service is not None
        return refusal(service, throttled)
