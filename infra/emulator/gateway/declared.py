"""The REST API a stack declares, read from its deployment record, as the gateway serves it.

Everything here comes from the record's declared resources (type, inputs, physical ids):
the API (binary media types), its resources and their paths, the methods (authorization,
authorizer, scopes), the Lambda proxy integrations and the functions they name (timeout,
reserved concurrency, environment), the Cognito authorizers, the stage and its throttling
(``MethodSettings``) and, where one is associated with the stage, the WAF web ACL. There
is no second, hand-written description of the API: what the program does not declare,
the gateway does not serve.

Guarantees: a record without a REST API, a method without an integration, or an
integration that is not a Lambda proxy (``AWS_PROXY``) is refused with
:class:`UnsupportedApi` naming what is missing; routing follows API Gateway's precedence
(a literal path part before a ``{param}``, before a greedy ``{proxy+}``; the method
itself before ``ANY``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.emulator.record import DeploymentRecord, ResourceRecord

REST_API = "aws:apigateway/restApi:RestApi"
RESOURCE = "aws:apigateway/resource:Resource"
METHOD = "aws:apigateway/method:Method"
INTEGRATION = "aws:apigateway/integration:Integration"
INTEGRATION_RESPONSE = "aws:apigateway/integrationResponse:IntegrationResponse"
AUTHORIZER = "aws:apigateway/authorizer:Authorizer"
STAGE = "aws:apigateway/stage:Stage"
METHOD_SETTINGS = "aws:apigateway/methodSettings:MethodSettings"
FUNCTION = "aws:lambda/function:Function"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
WEB_ACL_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"

# Lambda's own default when a function declares no timeout.
LAMBDA_DEFAULT_TIMEOUT_S = 3


class UnsupportedApi(ValueError):
    """The record declares no API the gateway can serve, or one it cannot emulate."""


@dataclass(frozen=True)
class DeclaredFunction:
    name: str
    arn: str
    timeout_s: float
    memory_mb: int
    reserved_concurrency: int | None
    environment: Mapping[str, str]


@dataclass(frozen=True)
class DeclaredAuthorizer:
    id: str
    name: str
    type: str
    provider_arns: tuple[str, ...]
    # The request header the token is read from (method.request.header.<Name>).
    header: str


@dataclass(frozen=True)
class DeclaredS3Read:
    """An S3 integration that reads one object (``GET`` on ``:s3:path/<bucket>/<key>``):
    the key template's ``{name}`` parts come from the method's path parameters; the 200
    response maps headers from the object's (``integration.response.header.<h>``) or
    static values (``'v'``); any 4xx from S3 is the declared not-found response."""

    bucket: str
    key_template: str
    path_parameters: Mapping[str, str]  # integration param -> method path param
    ok_headers: Mapping[str, str]  # response header -> mapping expression
    not_found_status: int
    not_found_body: str


@dataclass(frozen=True)
class DeclaredMethod:
    resource_id: str
    resource_path: str
    http_method: str  # a verb or ANY
    authorization: str  # NONE or COGNITO_USER_POOLS (others are refused)
    authorizer: DeclaredAuthorizer | None
    scopes: tuple[str, ...]
    function: DeclaredFunction | None
    s3_read: DeclaredS3Read | None = None

    @property
    def key(self) -> str:
        return f"{self.http_method} {self.resource_path}"


@dataclass(frozen=True)
class Throttle:
    rate_per_s: float
    burst: int


@dataclass(frozen=True)
class Route:
    method: DeclaredMethod
    path_parameters: Mapping[str, str]


@dataclass(frozen=True)
class DeclaredApi:
    api_id: str
    name: str
    account_id: str
    region: str
    stage: str
    binary_media_types: tuple[str, ...]
    resources: Mapping[str, str]  # resource id -> path template
    methods: Mapping[tuple[str, str], DeclaredMethod]  # (resource id, verb or ANY)
    throttle: Throttle | None
    web_acl_rules: tuple[Mapping[str, Any], ...] | None  # declared rules, camelCase
    web_acl_name: str | None
    functions: tuple[DeclaredFunction, ...] = field(default=())

    def route(self, path: str, verb: str) -> Route | str | None:
        """The method serving ``verb path`` (``path`` without the stage).

        Returns the :class:`Route`, ``None`` when no resource matches, or the resource
        path (a ``str``) when a resource matches but declares no such method.
        """
        segments = [s for s in path.split("/") if s] if path != "/" else []
        best: tuple[tuple[int, ...], str, dict[str, str]] | None = None
        for resource_id, template in self.resources.items():
            params = _match(template, segments)
            if params is None:
                continue
            rank = _specificity(template)
            if best is None or rank > best[0]:
                best = (rank, resource_id, params)
        if best is None:
            return None
        _, resource_id, params = best
        method = self.methods.get((resource_id, verb.upper())) or self.methods.get(
            (resource_id, "ANY")
        )
        if method is None:
            return self.resources[resource_id]
        return Route(method, params)

    @classmethod
    def from_record(cls, record: DeploymentRecord) -> DeclaredApi:
        apis = record.of_type(REST_API)
        if len(apis) != 1:
            raise UnsupportedApi(
                f"{record.stack}: the gateway serves one REST API per stack; "
                f"the record declares {len(apis)}"
            )
        api = apis[0]
        api_id = api.id
        root = str(api.state.get("rootResourceId") or "")
        if not root:
            raise UnsupportedApi(f"{api.name}: the record has no root resource id")
        resources = _resource_paths(root, [r for r in record.of_type(RESOURCE) if _in(r, api_id)])
        functions = {str(f.state.get("arn")): _function(f) for f in record.of_type(FUNCTION)}
        authorizers = {a.id: _authorizer(a) for a in record.of_type(AUTHORIZER) if _in(a, api_id)}
        integrations = {
            (str(i.inputs["resourceId"]), str(i.inputs["httpMethod"]).upper()): i
            for i in record.of_type(INTEGRATION)
            if _in(i, api_id)
        }
        methods: dict[tuple[str, str], DeclaredMethod] = {}
        for m in record.of_type(METHOD):
            if not _in(m, api_id):
                continue
            resource_id = str(m.inputs["resourceId"])
            verb = str(m.inputs["httpMethod"]).upper()
            path = resources.get(resource_id)
            if path is None:
                raise UnsupportedApi(f"{m.name}: resource {resource_id} is not declared")
            integration = integrations.get((resource_id, verb))
            if integration is None:
                raise UnsupportedApi(f"{m.name}: {verb} {path} has no integration")
            responses = [
                r
                for r in record.of_type(INTEGRATION_RESPONSE)
                if _in(r, api_id)
                and str(r.inputs["resourceId"]) == resource_id
                and str(r.inputs["httpMethod"]).upper() == verb
            ]
            methods[(resource_id, verb)] = _method(
                m, path, integration, authorizers, functions, responses
            )
        stages = [s for s in record.of_type(STAGE) if _in(s, api_id)]
        if len(stages) != 1:
            raise UnsupportedApi(f"{api.name}: expected one stage, the record has {len(stages)}")
        stage = stages[0]
        stage_name = str(stage.inputs["stageName"])
        web_acl = _web_acl_of(record, str(stage.state.get("arn") or ""))
        return cls(
            api_id=api_id,
            name=str(api.inputs.get("name") or api.name),
            account_id=record.account_id,
            region=record.region,
            stage=stage_name,
            binary_media_types=tuple(str(t) for t in api.inputs.get("binaryMediaTypes") or ()),
            resources=resources,
            methods=methods,
            throttle=_throttle(record, api_id, stage_name),
            web_acl_rules=tuple(web_acl.inputs.get("rules") or ()) if web_acl else None,
            web_acl_name=str(web_acl.inputs.get("name") or web_acl.name) if web_acl else None,
            functions=tuple(
                {m.function.name: m.function for m in methods.values() if m.function}.values()
            ),
        )


def _in(resource: ResourceRecord, api_id: str) -> bool:
    return str(resource.inputs.get("restApi") or resource.locator.get("rest_api")) == api_id


def _resource_paths(root: str, resources: Sequence[ResourceRecord]) -> dict[str, str]:
    parents = {r.id: (str(r.inputs["parentId"]), str(r.inputs["pathPart"])) for r in resources}
    paths = {root: "/"}

    def path_of(resource_id: str, seen: frozenset[str] = frozenset()) -> str:
        if resource_id in paths:
            return paths[resource_id]
        if resource_id in seen or resource_id not in parents:
            raise UnsupportedApi(f"resource {resource_id} does not lead to the API's root")
        parent, part = parents[resource_id]
        parent_path = path_of(parent, seen | {resource_id})
        paths[resource_id] = parent_path.rstrip("/") + "/" + part
        return paths[resource_id]

    for resource_id in parents:
        path_of(resource_id)
    return paths


def _match(template: str, segments: list[str]) -> dict[str, str] | None:
    parts = [p for p in template.split("/") if p]
    params: dict[str, str] = {}
    for index, part in enumerate(parts):
        if part.startswith("{") and part.endswith("+}"):
            rest = segments[index:]
            if not rest:
                return None
            params[part[1:-2]] = "/".join(rest)
            return params
        if index >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = segments[index]
        elif part != segments[index]:
            return None
    return params if len(parts) == len(segments) else None


def _specificity(template: str) -> tuple[int, ...]:
    """Literal parts outrank ``{param}``, which outranks a greedy ``{proxy+}``."""
    rank = []
    for part in (p for p in template.split("/") if p):
        if part.endswith("+}"):
            rank.append(1)
        elif part.startswith("{"):
            rank.append(2)
        else:
            rank.append(3)
    return tuple(rank)


def _function(f: ResourceRecord) -> DeclaredFunction:
    env = (f.inputs.get("environment") or {}).get("variables") or {}
    reserved = f.inputs.get("reservedConcurrentExecutions")
    return DeclaredFunction(
        name=str(f.inputs.get("name") or f.id),
        arn=str(f.state.get("arn") or ""),
        timeout_s=float(f.inputs.get("timeout") or LAMBDA_DEFAULT_TIMEOUT_S),
        memory_mb=int(f.inputs.get("memorySize") or 128),
        reserved_concurrency=int(reserved) if reserved is not None and int(reserved) >= 0 else None,
        environment={str(k): str(v) for k, v in env.items()},
    )


def _authorizer(a: ResourceRecord) -> DeclaredAuthorizer:
    source = str(a.inputs.get("identitySource") or "method.request.header.Authorization")
    prefix = "method.request.header."
    if not source.startswith(prefix):
        raise UnsupportedApi(f"{a.name}: identity source {source!r} is not a request header")
    return DeclaredAuthorizer(
        id=a.id,
        name=str(a.inputs.get("name") or a.name),
        type=str(a.inputs.get("type")),
        provider_arns=tuple(str(p) for p in a.inputs.get("providerArns") or ()),
        header=source[len(prefix) :],
    )


def _method(
    m: ResourceRecord,
    path: str,
    integration: ResourceRecord,
    authorizers: Mapping[str, DeclaredAuthorizer],
    functions: Mapping[str, DeclaredFunction],
    responses: Sequence[ResourceRecord] = (),
) -> DeclaredMethod:
    kind = str(m.inputs.get("authorization") or "NONE")
    authorizer = None
    if kind == "COGNITO_USER_POOLS":
        authorizer = authorizers.get(str(m.inputs.get("authorizerId")))
        if authorizer is None or authorizer.type != "COGNITO_USER_POOLS":
            raise UnsupportedApi(f"{m.name}: authorizer {m.inputs.get('authorizerId')} not found")
    elif kind != "NONE":
        raise UnsupportedApi(f"{m.name}: authorization {kind} is not emulated")
    kind_of_integration = str(integration.inputs.get("type"))
    uri = str(integration.inputs.get("uri") or "")
    if kind_of_integration == "AWS" and ":s3:path/" in uri:
        return DeclaredMethod(
            resource_id=str(m.inputs["resourceId"]),
            resource_path=path,
            http_method=str(m.inputs["httpMethod"]).upper(),
            authorization=kind,
            authorizer=authorizer,
            scopes=tuple(str(s) for s in m.inputs.get("authorizationScopes") or ()),
            function=None,
            s3_read=_s3_read(integration, uri, responses),
        )
    if kind_of_integration != "AWS_PROXY":
        raise UnsupportedApi(
            f"{integration.name}: only Lambda proxy integrations (AWS_PROXY) and S3 object "
            "reads (AWS, :s3:path/) are emulated"
        )
    arn = uri.split("/functions/", 1)[-1].removesuffix("/invocations")
    function = functions.get(arn)
    if function is None:
        raise UnsupportedApi(f"{integration.name}: integration names no declared function")
    return DeclaredMethod(
        resource_id=str(m.inputs["resourceId"]),
        resource_path=path,
        http_method=str(m.inputs["httpMethod"]).upper(),
        authorization=kind,
        authorizer=authorizer,
        scopes=tuple(str(s) for s in m.inputs.get("authorizationScopes") or ()),
        function=function,
    )


def _s3_read(
    integration: ResourceRecord, uri: str, responses: Sequence[ResourceRecord]
) -> DeclaredS3Read:
    if str(integration.inputs.get("integrationHttpMethod") or "").upper() != "GET":
        raise UnsupportedApi(f"{integration.name}: only S3 GET (object reads) is emulated")
    bucket, _, key = uri.split(":s3:path/", 1)[1].partition("/")
    if not bucket or not key:
        raise UnsupportedApi(f"{integration.name}: {uri} names no bucket and key")
    prefix = "integration.request.path."
    mapped = {}
    for target, source in (integration.inputs.get("requestParameters") or {}).items():
        if not (str(target).startswith(prefix) and str(source).startswith("method.request.path.")):
            raise UnsupportedApi(f"{integration.name}: request parameter {target} is not emulated")
        mapped[str(target)[len(prefix) :]] = str(source).rsplit(".", 1)[1]
    ok = [r for r in responses if not r.inputs.get("selectionPattern")]
    errors = [r for r in responses if r.inputs.get("selectionPattern")]
    if len(ok) != 1:
        raise UnsupportedApi(f"{integration.name}: expected one default integration response")
    headers = {
        str(k).removeprefix("method.response.header."): str(v)
        for k, v in (ok[0].inputs.get("responseParameters") or {}).items()
    }
    not_found = errors[0] if errors else None
    templates = (not_found.inputs.get("responseTemplates") or {}) if not_found else {}
    return DeclaredS3Read(
        bucket=bucket,
        key_template=key,
        path_parameters=mapped,
        ok_headers=headers,
        not_found_status=int(not_found.inputs["statusCode"]) if not_found else 500,
        not_found_body=str(next(iter(templates.values()), "")),
    )


def _throttle(record: DeploymentRecord, api_id: str, stage: str) -> Throttle | None:
    for ms in record.of_type(METHOD_SETTINGS):
        if not _in(ms, api_id) or str(ms.inputs.get("stageName")) != stage:
            continue
        if str(ms.inputs.get("methodPath")) != "*/*":
            raise UnsupportedApi(f"{ms.name}: only stage-wide (*/*) method settings are emulated")
        settings = ms.inputs.get("settings") or {}
        rate, burst = settings.get("throttlingRateLimit"), settings.get("throttlingBurstLimit")
        if rate is not None and burst is not None:
            return Throttle(float(rate), int(burst))
    return None


def _web_acl_of(record: DeploymentRecord, stage_arn: str) -> ResourceRecord | None:
    if not stage_arn:
        return None
    for association in record.of_type(WEB_ACL_ASSOCIATION):
        if str(association.inputs.get("resourceArn")) != stage_arn:
            continue
        arn = str(association.inputs.get("webAclArn"))
        for acl in record.of_type(WEB_ACL):
            if str(acl.state.get("arn")) == arn:
                return acl
        raise UnsupportedApi(f"{association.name}: web ACL {arn} is not in the record")
    return None
