"""The local API gateway: HTTP on loopback, API Gateway's request path in front of a handler.

``LocalGateway(record, handler).start(host, port)`` serves the stack's declared REST API
(see :mod:`infra.emulator.gateway.declared`) at ``http://host:port/<stage>`` and hands each
admitted request, as a REST proxy event, to ``handler(event, context)`` in this process:
the deployed function's entry point (``app.lambda_handler.handler``, or
``app.main.lambda_handler_for(app)`` for an app built here). Per request, in AWS's order:

1. API Gateway's 10 MB payload cap: ``413`` (``HTTP content length exceeded 10485760
   bytes.``), before anything else reads the body;
2. the stage in the path (``403 {"message": "Forbidden"}`` without it);
3. the web ACL associated with the stage, if declared: ``403 {"message": "Forbidden"}``;
4. routing by the declared resources and methods: ``403 {"message": "Missing
   Authentication Token"}`` when none matches;
5. the stage's throttle (token bucket per method): ``429 {"message": "Too Many
   Requests"}``;
6. the method's Cognito authorizer: ``401 {"message": "Unauthorized"}``;
7. Lambda's 6 MB request cap on the event: ``413 {"message": "Request Too Long"}``;
8. the invocation, bounded by the function's declared timeout (``502 {"message":
   "Internal server error"}``, as for any function error) and the 29 s integration
   timeout (``504 {"message": "Endpoint request timed out"}``);
9. Lambda's response cap and the proxy response format (``502``), then the binary
   conversion of the body (see :mod:`infra.emulator.gateway.events`).

Methods integrated with S3 (the web client's files, ``GET /web/...``) are answered by the
gateway itself after step 6: the object named by the declared integration URI is read
from the emulator's S3 and its headers mapped as the declared integration response says
(:meth:`LocalGateway.serve_s3_read`); the emulator endpoint stands in for the stack's AWS
endpoints in those files (``aws_endpoints``), a recorded gap.

Invocations run on a pool of worker threads sized by the function's reserved concurrency
(at most :data:`MAX_WORKERS`); a timed-out invocation is abandoned, not stopped (Lambda
would end its environment): a gap, recorded in ``infra/emulator/gaps.py``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from infra.emulator.gateway.authorizer import CognitoAuthorizer, Unauthorized, issuer_of
from infra.emulator.gateway.declared import (
    DeclaredApi,
    DeclaredFunction,
    DeclaredMethod,
    DeclaredS3Read,
    Route,
)
from infra.emulator.gateway.events import (
    GatewayRequest,
    GatewayResponse,
    MalformedProxyResponse,
    gateway_error,
    http_response,
    proxy_event,
)
from infra.emulator.gateway.limits import (
    API_PAYLOAD_LIMIT,
    INTEGRATION_TIMEOUT_S,
    LAMBDA_REQUEST_LIMIT,
    LAMBDA_RESPONSE_LIMIT,
    TokenBucket,
)
from infra.emulator.gateway.waf import WafRequest, WebAclEvaluator
from infra.emulator.record import DeploymentRecord

Handler = Callable[[dict[str, Any], Any], Any]
MAX_WORKERS = 8


@dataclass
class LambdaContext:
    """The fields of Lambda's context object a handler (Mangum) may read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    deadline: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    """An admitted request, ready for the function."""

    event: dict[str, Any]
    method: DeclaredMethod
    accept: str | None
    request_id: str


def _payload_too_large() -> GatewayResponse:
    text = f"HTTP content length exceeded {API_PAYLOAD_LIMIT} bytes."
    return GatewayResponse(413, [("content-type", "text; charset=utf-8")], text.encode())


def emulator_jwks_url(endpoint: str | None) -> Callable[[str], str]:
    """Where a pool's JWKS lives: moto serves it under the endpoint, AWS under the issuer."""
    if endpoint:
        base = endpoint.rstrip("/")
        return lambda pool: f"{base}/{pool}/.well-known/jwks.json"
    return lambda pool: f"{issuer_of(pool)}/.well-known/jwks.json"


def emulator_s3_reader(
    endpoint: str | None, region: str
) -> Callable[[str, str], tuple[bytes, Mapping[str, str]] | None]:
    """Reads an object from the emulator's S3 (None when it does not exist), returning
    its bytes and its HTTP headers (``x-amz-meta-*`` included), as S3 would send them."""
    client: Any = None

    def read(bucket: str, key: str) -> tuple[bytes, Mapping[str, str]] | None:
        nonlocal client
        import boto3
        from botocore.exceptions import ClientError

        if client is None:
            client = boto3.client("s3", region_name=region, endpoint_url=endpoint)
        try:
            got = client.get_object(Bucket=bucket, Key=key)
        except ClientError:
            return None
        headers = dict(got["ResponseMetadata"].get("HTTPHeaders", {}))
        return got["Body"].read(), headers

    return read


class LocalGateway:
    """The declared REST API of ``record`` in front of ``handler``.

    Args:
        record: the stack's deployment record (or one built from the program's
            declaration by :func:`infra.emulator.gateway.record_from_program`).
        handler: the Lambda entry point, ``handler(event, context) -> proxy response``.
        jwks_url: pool id -> JWKS URL; default: the record's emulator endpoint.
        clock: monotonic seconds for the throttle and the WAF rate rule (tests move it).
        integration_timeout_s: API Gateway's integration timeout (29 s).
    """

    def __init__(
        self,
        record: DeploymentRecord,
        handler: Handler,
        *,
        jwks_url: Callable[[str], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        integration_timeout_s: float = INTEGRATION_TIMEOUT_S,
        s3_reader: Callable[[str, str], tuple[bytes, Mapping[str, str]] | None] | None = None,
        aws_endpoints: Mapping[str, str] | None = None,
    ):
        self.api = DeclaredApi.from_record(record)
        self._s3_reader = s3_reader or emulator_s3_reader(record.endpoint_url, record.region)
        # AWS origin (https://host) -> the emulator's origin standing in for it
        self._aws_endpoints = dict(aws_endpoints or {})
        self._handler = handler
        self._integration_timeout = integration_timeout_s
        endpoint = record.endpoints.get("cognito-idp") or record.endpoint_url
        resolve = jwks_url or emulator_jwks_url(endpoint)
        self._authorizers = {
            m.authorizer.id: CognitoAuthorizer(
                m.authorizer.provider_arns, resolve, clock=wall_clock
            )
            for m in self.api.methods.values()
            if m.authorizer is not None
        }
        self._buckets: dict[str, TokenBucket] = {}
        if self.api.throttle is not None:
            for m in self.api.methods.values():
                self._buckets[m.key] = TokenBucket(
                    self.api.throttle.rate_per_s, self.api.throttle.burst, clock
                )
        self.waf = (
            WebAclEvaluator(self.api.web_acl_rules, clock=clock)
            if self.api.web_acl_rules is not None
            else None
        )
        concurrency = min(
            (f.reserved_concurrency or MAX_WORKERS for f in self.api.functions), default=1
        )
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, min(concurrency, MAX_WORKERS)),
            thread_name_prefix="lambda",
            initializer=_own_event_loop,
        )
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.base_url: str | None = None

    # -- the request path, without HTTP ----------------------------------------------------

    def prepare(self, request: GatewayRequest) -> Invocation | GatewayResponse:
        """Steps 1-7: an :class:`Invocation`, or the gateway's own refusal."""
        if len(request.body) > API_PAYLOAD_LIMIT:
            return _payload_too_large()
        stage_prefix = f"/{self.api.stage}"
        raw = request.raw_path
        if raw != stage_prefix and not raw.startswith(stage_prefix + "/"):
            return gateway_error(403, "Forbidden", "ForbiddenException")
        path = raw[len(stage_prefix) :] or "/"
        if self.waf is not None:
            verdict = self.waf.evaluate(
                WafRequest(
                    request.method,
                    unquote(raw),
                    request.query_string,
                    request.headers,
                    request.body,
                    request.source_ip,
                )
            )
            if verdict.action == "BLOCK":
                return gateway_error(403, "Forbidden", "ForbiddenException")
        route = self.api.route(unquote(path), request.method)
        if not isinstance(route, Route):
            return gateway_error(403, "Missing Authentication Token", "MissingAuthenticationToken")
        method = route.method
        bucket = self._buckets.get(method.key)
        if bucket is not None and not bucket.take():
            return gateway_error(429, "Too Many Requests", "TooManyRequestsException")
        claims: dict[str, str] | None = None
        if method.authorizer is not None:
            try:
                claims = self._authorizers[method.authorizer.id].authorize(
                    request.header(method.authorizer.header), method.scopes
                )
            except Unauthorized:
                return gateway_error(401, "Unauthorized", "UnauthorizedException")
        if method.s3_read is not None:
            return self.serve_s3_read(method.s3_read, route.path_parameters)
        request_id = str(uuid.uuid4())
        event = proxy_event(
            request,
            stage=self.api.stage,
            path=path,
            resource_path=method.resource_path,
            resource_id=method.resource_id,
            path_parameters=route.path_parameters,
            api_id=self.api.api_id,
            account_id=self.api.account_id,
            region=self.api.region,
            binary_media_types=self.api.binary_media_types,
            claims=claims,
            request_id=request_id,
        )
        if len(json.dumps(event).encode()) > LAMBDA_REQUEST_LIMIT:
            return gateway_error(413, "Request Too Long", "BadRequestException")
        return Invocation(event, method, request.header("accept"), request_id)

    def serve_s3_read(
        self, read: DeclaredS3Read, path_parameters: Mapping[str, str]
    ) -> GatewayResponse:
        """An S3 object read as the declared integration maps it (200), or its 4xx."""
        key = read.key_template
        for name, source in read.path_parameters.items():
            part = path_parameters.get(source)
            if part is None:
                return gateway_error(500, "Internal server error")
            key = key.replace("{" + name + "}", part)
        found = self._s3_reader(read.bucket, key) if ".." not in key.split("/") else None
        if found is None:
            body = read.not_found_body.encode()
            return GatewayResponse(
                read.not_found_status, [("content-type", "application/json")], body
            )
        body, object_headers = found
        lower = {k.lower(): v for k, v in object_headers.items()}
        headers: list[tuple[str, str]] = []
        for name, expression in read.ok_headers.items():
            if expression.startswith("'") and expression.endswith("'"):
                value: str | None = expression[1:-1]
            else:
                value = lower.get(expression.removeprefix("integration.response.header.").lower())
            if value is not None:
                headers.append((name.lower(), self._on_emulator(value)))
        if lower.get("content-type", "").startswith(("application/json", "text/")):
            body = self._on_emulator(body.decode("utf-8")).encode("utf-8")
        headers.append(("content-length", str(len(body))))
        return GatewayResponse(200, headers, body)

    def _on_emulator(self, text: str) -> str:
        for origin, stand_in in self._aws_endpoints.items():
            text = text.replace(origin, stand_in)
        return text

    def deadline(self, function: DeclaredFunction) -> tuple[float, GatewayResponse]:
        """How long the gateway waits, and what it answers when that runs out."""
        if function.timeout_s < self._integration_timeout:
            return function.timeout_s, gateway_error(502, "Internal server error")
        return self._integration_timeout, gateway_error(504, "Endpoint request timed out")

    def submit(self, invocation: Invocation) -> Future[Any]:
        function = invocation.method.function
        assert function is not None  # S3 reads never become invocations
        wait, _ = self.deadline(function)
        context = LambdaContext(
            function_name=function.name,
            invoked_function_arn=function.arn,
            memory_limit_in_mb=function.memory_mb,
            aws_request_id=invocation.request_id,
            deadline=time.monotonic() + wait,
        )
        return self._pool.submit(self._handler, invocation.event, context)

    def finish(self, invocation: Invocation, result: Any) -> GatewayResponse:
        """Step 9: the function's answer as the client's response."""
        try:
            size = len(json.dumps(result).encode())
        except (TypeError, ValueError):
            return gateway_error(502, "Internal server error")
        if size > LAMBDA_RESPONSE_LIMIT:
            return gateway_error(502, "Internal server error")
        try:
            response = http_response(
                result, accept=invocation.accept, binary_media_types=self.api.binary_media_types
            )
        except MalformedProxyResponse:
            return gateway_error(502, "Internal server error")
        response.headers.append(("x-amzn-requestid", invocation.request_id))
        return response

    def handle(self, request: GatewayRequest) -> GatewayResponse:
        """The whole request path, synchronously (for callers without an event loop)."""
        prepared = self.prepare(request)
        if isinstance(prepared, GatewayResponse):
            return prepared
        assert prepared.method.function is not None
        wait, late = self.deadline(prepared.method.function)
        try:
            result = self.submit(prepared).result(timeout=wait)
        except FutureTimeout:
            return late
        except Exception:  # the function failed: API Gateway answers 502
            return gateway_error(502, "Internal server error")
        return self.finish(prepared, result)

    # -- HTTP --------------------------------------------------------------------------------

    async def __call__(self, scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        declared = next((v for k, v in headers if k.lower() == "content-length"), None)
        too_large = bool(declared and declared.isdigit() and int(declared) > API_PAYLOAD_LIMIT)
        chunks: list[bytes] = []
        received = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            # Past the cap the body is drained, never kept: nothing downstream sees it.
            if received > API_PAYLOAD_LIMIT:
                too_large = True
            if not too_large:
                chunks.append(chunk)
            more = message.get("more_body", False)
        if too_large:
            await _send(send, _payload_too_large())
            return
        client = scope.get("client") or ("127.0.0.1", 0)
        request = GatewayRequest(
            method=scope["method"],
            raw_path=(scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=b"".join(chunks),
            source_ip=str(client[0]),
            protocol=f"HTTP/{scope.get('http_version', '1.1')}",
        )
        prepared = self.prepare(request)
        if isinstance(prepared, GatewayResponse):
            await _send(send, prepared)
            return
        assert prepared.method.function is not None
        wait, late = self.deadline(prepared.method.function)
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(self.submit(prepared)), wait)
        except TimeoutError:
            response = late
        except Exception:
            response = gateway_error(502, "Internal server error")
        else:
            response = self.finish(prepared, result)
        await _send(send, response)

    def start(self, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0) -> str:
        """Serve on ``host:port`` in a background thread; returns the stage's base URL."""
        import uvicorn

        from infra.emulator.server import free_port

        if port == 0:
            port = free_port(host)
        config = uvicorn.Config(self, host=host, port=port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="hub-gateway", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the gateway did not start on {host}:{port}")
            time.sleep(0.02)
        self.base_url = f"http://{host}:{port}/{self.api.stage}"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)


def _own_event_loop() -> None:
    # Mangum runs the ASGI app on the calling thread's event loop; each worker has its own.
    asyncio.set_event_loop(asyncio.new_event_loop())


async def _send(send: Any, response: GatewayResponse) -> None:
    headers = [
        (k.encode("latin-1"), v.encode("latin-1"))
        for k, v in response.headers
        if k.lower() != "content-length"
    ]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
