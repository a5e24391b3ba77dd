"""The sharing service's front door: Lambda functions and permissions, the API Gateway
REST API (resources, methods, integrations, authorizer, deployment, stage, settings)
and the WAF web ACL with its stage association."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from infra.emulator import gaps
from infra.emulator.bundle import app_source_zip, code_sha256
from infra.emulator.provision import (
    Context,
    Declared,
    Provisioned,
    Provisioner,
    as_int,
    drop_none,
    existing,
    ignore_missing,
    provisioner,
)
from infra.emulator.record import ResourceRecord

# ---------------------------------------------------------------------------- Lambda


def _function_config(i: dict[str, Any]) -> dict[str, Any]:
    env = (i.get("environment") or {}).get("variables")
    logging = i.get("loggingConfig") or {}
    return drop_none(
        {
            "Role": i["role"],
            "Handler": i.get("handler"),
            "Runtime": i.get("runtime"),
            "MemorySize": as_int(i["memorySize"]) if "memorySize" in i else None,
            "Timeout": as_int(i["timeout"]) if "timeout" in i else None,
            "Environment": {"Variables": {k: str(v) for k, v in env.items()}} if env else None,
            "TracingConfig": {"Mode": i["tracingConfig"]["mode"]}
            if i.get("tracingConfig")
            else None,
            "LoggingConfig": drop_none(
                {"LogFormat": logging.get("logFormat"), "LogGroup": logging.get("logGroup")}
            )
            or None,
            "Description": i.get("description"),
            "DeadLetterConfig": {"TargetArn": i["deadLetterConfig"]["targetArn"]}
            if (i.get("deadLetterConfig") or {}).get("targetArn")
            else None,
        }
    )


@provisioner
class Function(Provisioner):
    type_token = "aws:lambda/function:Function"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        lam = ctx.client("lambda")
        i = declared.inputs
        name = str(i.get("name") or declared.name)
        code = app_source_zip()
        sha = code_sha256(code)
        config = _function_config(i)
        on_localstack = ctx.served_by_localstack("lambda")
        current = existing(
            lambda: lam.get_function_configuration(FunctionName=name), "ResourceNotFoundException"
        )
        if current is None:
            current = lam.create_function(
                FunctionName=name,
                Code={"ZipFile": code},
                Architectures=list(i.get("architectures") or ["x86_64"]),
                **config,
            )
        else:
            # LocalStack without Docker never readies a function, and refuses to update
            # (or delete) one that is not ready: it stays as first created (a gap).
            stuck = on_localstack and current.get("State") == "Failed"
            if not stuck:
                lam.update_function_configuration(FunctionName=name, **config)
            if not stuck and current.get("CodeSha256") != sha:
                current = lam.update_function_code(FunctionName=name, ZipFile=code)
        reserved = i.get("reservedConcurrentExecutions")
        if reserved is not None and as_int(reserved) >= 0:
            lam.put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=as_int(reserved)
            )
        ctx.add_gap(gaps.lambda_execution(declared.name, ctx.emulator_name("lambda")))
        if on_localstack:
            ctx.add_gap(gaps.lambda_never_ready(declared.name))
        arn = current["FunctionArn"]
        return Provisioned(
            id=name,
            state={
                "arn": arn,
                "name": name,
                "invokeArn": f"arn:aws:apigateway:{ctx.region}:lambda:path/2015-03-31/functions/"
                f"{arn}/invocations",
                "qualifiedArn": f"{arn}:$LATEST",
                "qualifiedInvokeArn": f"arn:aws:apigateway:{ctx.region}:lambda:path/2015-03-31/"
                f"functions/{arn}:$LATEST/invocations",
                "version": "$LATEST",
                "codeSha256": sha,
                "sourceCodeHash": sha,
                "sourceCodeSize": len(code),
            },
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        lam = ctx.client("lambda")
        ignore_missing(lambda: lam.delete_function(FunctionName=record.id))


@provisioner
class Permission(Provisioner):
    type_token = "aws:lambda/permission:Permission"

    def attached_to(self, record: ResourceRecord) -> str | None:
        return str(record.inputs.get("function") or "") or None

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        lam = ctx.client("lambda")
        i = declared.inputs
        function = str(i["function"])
        statement_id = str(i.get("statementId") or declared.name)
        ignore_missing(
            lambda: lam.remove_permission(FunctionName=function, StatementId=statement_id)
        )
        lam.add_permission(
            **drop_none(
                {
                    "FunctionName": function,
                    "StatementId": statement_id,
                    "Action": i["action"],
                    "Principal": i["principal"],
                    "SourceArn": i.get("sourceArn"),
                    "SourceAccount": i.get("sourceAccount"),
                }
            )
        )
        return Provisioned(
            id=statement_id, state={"statementId": statement_id}, locator={"function": function}
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        lam = ctx.client("lambda")
        ignore_missing(
            lambda: lam.remove_permission(
                FunctionName=record.locator["function"], StatementId=record.id
            )
        )


# ---------------------------------------------------------------------- API Gateway


def _api_of(record: ResourceRecord) -> str:
    return str(record.locator.get("rest_api") or record.inputs.get("restApi") or "")


class _InApi(Provisioner):
    def attached_to(self, record: ResourceRecord) -> str | None:
        return _api_of(record) or None


def _method_locator(i: dict[str, Any]) -> dict[str, str]:
    """How a method, its integration or one of their responses (with its status code) is
    found again; its values, in order, make the physical id after a prefix."""
    locator = {
        "rest_api": str(i["restApi"]),
        "resource": str(i["resourceId"]),
        "verb": str(i["httpMethod"]),
    }
    if "statusCode" in i:
        locator["status"] = str(i["statusCode"])
    return locator


def _method_address(locator: dict[str, str]) -> dict[str, str]:
    """A :func:`_method_locator` as API Gateway's arguments."""
    address = {
        "restApiId": locator["rest_api"],
        "resourceId": locator["resource"],
        "httpMethod": locator["verb"],
    }
    if "status" in locator:
        address["statusCode"] = locator["status"]
    return address


def _method_id(prefix: str, locator: dict[str, str]) -> str:
    return "-".join([prefix, *locator.values()])


@provisioner
class RestApi(Provisioner):
    type_token = "aws:apigateway/restApi:RestApi"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        apigw = ctx.client("apigateway")
        i = declared.inputs
        name = str(i.get("name") or declared.name)
        api = self._existing(apigw, declared, name)
        types = (i.get("endpointConfiguration") or {}).get("types") or "EDGE"
        if api is None:
            api = apigw.create_rest_api(
                **drop_none(
                    {
                        "name": name,
                        "description": i.get("description"),
                        "endpointConfiguration": {
                            "types": [types] if isinstance(types, str) else list(types)
                        },
                        "securityPolicy": i.get("securityPolicy"),
                        "endpointAccessMode": i.get("endpointAccessMode"),
                        "binaryMediaTypes": i.get("binaryMediaTypes"),
                        "tags": i.get("tags"),
                    }
                )
            )
        elif i.get("description") is not None and api.get("description") != i["description"]:
            apigw.update_rest_api(
                restApiId=api["id"],
                patchOperations=[
                    {"op": "replace", "path": "/description", "value": i["description"]}
                ],
            )
        api_id = api["id"]
        if i.get("securityPolicy") or i.get("endpointAccessMode"):
            stored = apigw.get_rest_api(restApiId=api_id)
            held = stored.get("securityPolicy") == i.get("securityPolicy") and stored.get(
                "endpointAccessMode"
            ) == i.get("endpointAccessMode")
            ctx.add_gap(gaps.api_tls_policy(declared.name, stored=held))
        root = next(
            r["id"]
            for r in apigw.get_resources(restApiId=api_id, limit=500)["items"]
            if r["path"] == "/"
        )
        return Provisioned(
            id=api_id,
            state={
                "rootResourceId": root,
                "arn": f"arn:aws:apigateway:{ctx.region}::/restapis/{api_id}",
                "executionArn": ctx.arn("execute-api", api_id),
                "name": name,
            },
        )

    def _existing(self, apigw: Any, declared: Declared, name: str) -> dict[str, Any] | None:
        apis = apigw.get_rest_apis(limit=500)["items"]
        if declared.previous is not None:
            for api in apis:
                if api["id"] == declared.previous.id:
                    return dict(api)
        same_name = [a for a in apis if a["name"] == name]
        return dict(same_name[0]) if same_name else None

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        apigw = ctx.client("apigateway")
        if existing(lambda: apigw.get_rest_api(restApiId=record.id), "NotFoundException") is None:
            return  # moto answers a delete of a missing API with a server error
        apigw.delete_rest_api(restApiId=record.id)


@provisioner
class ApiResource(_InApi):
    type_token = "aws:apigateway/resource:Resource"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        apigw = ctx.client("apigateway")
        i = declared.inputs
        api, parent, part = str(i["restApi"]), str(i["parentId"]), str(i["pathPart"])
        for item in apigw.get_resources(restApiId=api, limit=500)["items"]:
            if item.get("parentId") == parent and item.get("pathPart") == part:
                found = item
                break
        else:
            found = apigw.create_resource(restApiId=api, parentId=parent, pathPart=part)
        return Provisioned(
            id=found["id"], state={"path": found.get("path", "")}, locator={"rest_api": api}
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        apigw = ctx.client("apigateway")
        ignore_missing(
            lambda: apigw.delete_resource(restApiId=_api_of(record), resourceId=record.id)
        )


@provisioner
class Method(_InApi):
    type_token = "aws:apigateway/method:Method"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        apigw = ctx.client("apigateway")
        i = declared.inputs
        locator = _method_locator(i)
        address = _method_address(locator)
        fields = drop_none(
            {
                "authorizationType": i.get("authorization", "NONE"),
                "authorizerId": i.get("authorizerId"),
                "authorizationScopes": i.get("authorizationScopes"),
                "apiKeyRequired": i.get("apiKeyRequired"),
                "requestParameters": i.get("requestParameters"),
            }
        )
        current = existing(lambda: apigw.get_method(**address), "NotFoundException")
        if current is not None and any(current.get(k) != v for k, v in fields.items()):
            # Replace: the integration is re-put right after by its own resource.
            apigw.delete_method(**address)
            current = None
        if current is None:
            apigw.put_method(**address, **fields)
        return Provisioned(id=_method_id("agm", locator), locator=locator)

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        apigw = ctx.client("apigateway")
        ignore_missing(lambda: apigw.delete_method(**_method_address(record.locator)))


@provisioner
class Integration(_InApi):
    type_token = "aws:apigateway/integration:Integration"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        apigw = ctx.client("apigateway")
        i = declared.inputs
        locator = _method_locator(i)
        apigw.put_integration(
            **drop_none(
                {
                    **_method_address(locator),
                    "type": i["type"],
                    "integrationHttpMethod": i.get("integrationHttpMethod"),
                    "uri": i.get("uri"),
                    "credentials": i.get("credentials"),
                    "requestParameters": i.get("requestParameters"),
                }
            )
        )
        if i["type"] == "AWS_PROXY":
            ctx.add_gap(gaps.gateway_lambda_runtime(declared.name))
        elif ":s3:path/" in str(i.get("uri") or ""):
            ctx.add_gap(gaps.gateway_s3_integration_role(declared.name))
        return Provisioned(id=_method_id("agi", locator), locator=locator)

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        apigw = ctx.client("apigateway")
        ignore_missing(lambda: apigw.delete_integration(**_method_address(record.locator)))


class _StatusResponse(_InApi):
    """A method's or an integration's response to one status code: put on every deploy
    (a put replaces what was there), found again by its locator. Subclasses name the
    API Gateway calls, the id prefix and the inputs put as they are (API Gateway calls
    them as Pulumi does)."""

    put_call = ""
    delete_call = ""
    id_prefix = ""
    settings: tuple[str, ...] = ()

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        apigw = ctx.client("apigateway")
        i = declared.inputs
        locator = _method_locator(i)
        getattr(apigw, self.put_call)(
            **drop_none(
                {
                    **_method_address(locator),
                    **{setting: i.get(setting) for setting in self.settings},
                }
            )
        )
        return Provisioned(id=_method_id(self.id_prefix, locator), locator=locator)

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        delete = getattr(ctx.client("apigateway"), self.delete_call)
        ignore_missing(lambda: delete(**_method_address(record.locator)))


@provisioner
class MethodResponse(_StatusResponse):
    type_token = "aws:apigateway/methodResponse:MethodResponse"
    put_call = "put_method_response"
    delete_call = "delete_method_response"
    id_prefix = "agmr"
    settings = ("responseParameters", "responseModels")


@provisioner
class IntegrationResponse(_StatusResponse):
    type_token = "aws:apigateway/integrationResponse:IntegrationResponse"
    put_call = "put_integration_response"
    delete_call = "delete_integration_response"
    id_prefix = "agir"
    settings = ("selectionPattern", "responseParameters", "responseTemplates", "contentHandling")


@provisioner
class Authorizer(_InApi):
    type_token = "aws:apigateway/authorizer:Authorizer"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        apigw = ctx.client("apigateway")
        i = declared.inputs
        api, name = str(i["restApi"]), str(i.get("name") or declared.name)
        providers = list(i.get("providerArns") or [])
        existing = [
            a for a in apigw.get_authorizers(restApiId=api, limit=500)["items"] if a["name"] == name
        ]
        if existing and (existing[0].get("providerARNs") or []) != providers:
            # moto cannot patch provider ARNs: replace (methods re-point to the new id).
            apigw.delete_authorizer(restApiId=api, authorizerId=existing[0]["id"])
            existing = []
        if existing:
            authorizer_id = existing[0]["id"]
            apigw.update_authorizer(
                restApiId=api,
                authorizerId=authorizer_id,
                patchOperations=[
                    {"op": "replace", "path": "/identitySource", "value": i["identitySource"]}
                ],
            )
        else:
            authorizer_id = apigw.create_authorizer(
                **drop_none(
                    {
                        "restApiId": api,
                        "name": name,
                        "type": i["type"],
                        "providerARNs": providers or None,
                        "identitySource": i.get("identitySource"),
                        "authorizerUri": i.get("authorizerUri"),
                    }
                )
            )["id"]
        return Provisioned(id=authorizer_id, locator={"rest_api": api})

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        apigw = ctx.client("apigateway")
        ignore_missing(
            lambda: apigw.delete_authorizer(restApiId=_api_of(record), authorizerId=record.id)
        )


def _fingerprint(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


@provisioner
class Deployment(_InApi):
    """Deployments are immutable: reuse the last one while the triggers are unchanged."""

    type_token = "aws:apigateway/deployment:Deployment"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        apigw = ctx.client("apigateway")
        api = str(declared.inputs["restApi"])
        fingerprint = _fingerprint(declared.inputs)
        previous = declared.previous
        if previous is not None and previous.locator.get("fingerprint") == fingerprint:
            found = existing(
                lambda: apigw.get_deployment(restApiId=api, deploymentId=previous.id),
                "NotFoundException",
            )
            if found is not None:
                return Provisioned(id=previous.id, locator=dict(previous.locator))
        description = declared.inputs.get("description") or f"hub deployment {fingerprint[:12]}"
        # Without a record, a deployment of the same routes is found by its description.
        same = [
            d
            for d in apigw.get_deployments(restApiId=api, limit=500)["items"]
            if d.get("description") == description
        ]
        deployment = (
            same[0] if same else apigw.create_deployment(restApiId=api, description=description)
        )
        return Provisioned(
            id=deployment["id"], locator={"rest_api": api, "fingerprint": fingerprint}
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        apigw = ctx.client("apigateway")
        ignore_missing(
            lambda: apigw.delete_deployment(restApiId=_api_of(record), deploymentId=record.id),
            "BadRequestException",
        )


@provisioner
class Stage(_InApi):
    type_token = "aws:apigateway/stage:Stage"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        apigw = ctx.client("apigateway")
        i = declared.inputs
        api, name, deployment = str(i["restApi"]), str(i["stageName"]), str(i["deployment"])
        tracing = bool(i.get("xrayTracingEnabled", False))
        current = existing(
            lambda: apigw.get_stage(restApiId=api, stageName=name), "NotFoundException"
        )
        if current is None:
            apigw.create_stage(
                **drop_none(
                    {
                        "restApiId": api,
                        "stageName": name,
                        "deploymentId": deployment,
                        "tracingEnabled": tracing,
                        "description": i.get("description"),
                        "variables": i.get("variables"),
                        "tags": i.get("tags"),
                    }
                )
            )
            patches: list[dict[str, str]] = []
        else:
            patches = [
                {"op": "replace", "path": "/deploymentId", "value": deployment},
                {"op": "replace", "path": "/tracingEnabled", "value": str(tracing).lower()},
            ]
        logs = i.get("accessLogSettings")
        if logs:
            patches += [
                {
                    "op": "replace",
                    "path": "/accessLogSettings/destinationArn",
                    "value": logs["destinationArn"],
                },
                {"op": "replace", "path": "/accessLogSettings/format", "value": logs["format"]},
            ]
        if patches:
            apigw.update_stage(restApiId=api, stageName=name, patchOperations=patches)
        ctx.add_gap(gaps.api_authorizer(declared.name))
        return Provisioned(
            id=f"ags-{api}-{name}",
            state={
                "invokeUrl": f"https://{api}.execute-api.{ctx.region}.amazonaws.com/{name}",
                "arn": f"arn:aws:apigateway:{ctx.region}::/restapis/{api}/stages/{name}",
                "executionArn": ctx.arn("execute-api", f"{api}/{name}"),
                "emulatorInvokeUrl": (
                    f"{ctx.endpoint_for('apigateway')}/restapis/{api}/{name}/_user_request_"
                    if ctx.endpoint_for("apigateway")
                    else None
                ),
            },
            locator={"rest_api": api, "stage": name},
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        apigw = ctx.client("apigateway")
        ignore_missing(
            lambda: apigw.delete_stage(
                restApiId=record.locator["rest_api"], stageName=record.locator["stage"]
            )
        )


_METHOD_SETTINGS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "throttlingRateLimit": ("throttling/rateLimit", lambda v: str(float(v))),
    "throttlingBurstLimit": ("throttling/burstLimit", lambda v: str(as_int(v))),
    "metricsEnabled": ("metrics/enabled", lambda v: str(bool(v)).lower()),
    "loggingLevel": ("logging/loglevel", str),
    "dataTraceEnabled": ("logging/dataTrace", lambda v: str(bool(v)).lower()),
    "cachingEnabled": ("caching/enabled", lambda v: str(bool(v)).lower()),
}


@provisioner
class MethodSettings(_InApi):
    type_token = "aws:apigateway/methodSettings:MethodSettings"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        apigw = ctx.client("apigateway")
        i = declared.inputs
        api, stage, path = str(i["restApi"]), str(i["stageName"]), str(i["methodPath"])
        patches = []
        for key, value in (i.get("settings") or {}).items():
            if key in _METHOD_SETTINGS and value is not None:
                suffix, render = _METHOD_SETTINGS[key]
                patches.append(
                    {"op": "replace", "path": f"/{path}/{suffix}", "value": render(value)}
                )
        if patches:
            apigw.update_stage(restApiId=api, stageName=stage, patchOperations=patches)
        return Provisioned(
            id=f"{api}-{stage}-{path}", locator={"rest_api": api, "stage": stage, "path": path}
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        apigw = ctx.client("apigateway")
        loc = record.locator
        ignore_missing(
            lambda: apigw.update_stage(
                restApiId=loc["rest_api"],
                stageName=loc["stage"],
                patchOperations=[{"op": "remove", "path": f"/{loc['path']}"}],
            ),
            "BadRequestException",
        )


# ------------------------------------------------------------------------------ WAF

# Pulumi's camelCase keys whose AWS spelling is not a plain capitalisation.
_WAF_KEYS = {"cloudwatchMetricsEnabled": "CloudWatchMetricsEnabled", "none": "None"}


def _pascal(value: Any) -> Any:
    if isinstance(value, dict):
        return {_WAF_KEYS.get(k, k[:1].upper() + k[1:]): _pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pascal(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@provisioner
class WebAcl(Provisioner):
    type_token = "aws:wafv2/webAcl:WebAcl"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        waf = ctx.client("wafv2")
        i = declared.inputs
        name, scope = str(i.get("name") or declared.name), str(i["scope"])
        body = drop_none(
            {
                "DefaultAction": _pascal(i["defaultAction"]),
                "Rules": _pascal(i.get("rules") or []),
                "VisibilityConfig": _pascal(i["visibilityConfig"]),
                "Description": i.get("description"),
            }
        )
        summary = next(
            (
                a
                for a in waf.list_web_acls(Scope=scope, Limit=100).get("WebACLs", [])
                if a["Name"] == name
            ),
            None,
        )
        if summary is None:
            summary = waf.create_web_acl(Name=name, Scope=scope, **body)["Summary"]
        else:
            lock = waf.get_web_acl(Name=name, Scope=scope, Id=summary["Id"])["LockToken"]
            waf.update_web_acl(Name=name, Scope=scope, Id=summary["Id"], LockToken=lock, **body)
        ctx.add_gap(gaps.waf(declared.name))
        return Provisioned(
            id=summary["Id"],
            state={"arn": summary["ARN"], "name": name},
            locator={"name": name, "scope": scope},
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        waf = ctx.client("wafv2")
        loc = record.locator
        acl = existing(
            lambda: waf.get_web_acl(Name=loc["name"], Scope=loc["scope"], Id=record.id),
            "WAFNonexistentItemException",
        )
        if acl is None:
            return
        waf.delete_web_acl(
            Name=loc["name"], Scope=loc["scope"], Id=record.id, LockToken=acl["LockToken"]
        )


@provisioner
class WebAclAssociation(Provisioner):
    type_token = "aws:wafv2/webAclAssociation:WebAclAssociation"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        waf = ctx.client("wafv2")
        resource, acl = str(declared.inputs["resourceArn"]), str(declared.inputs["webAclArn"])
        current = (
            existing(
                lambda: waf.get_web_acl_for_resource(ResourceArn=resource).get("WebACL"),
                "WAFNonexistentItemException",
            )
            or {}
        )

        # A redeploy must not associate twice: moto appends the resource to the ACL's
        # list again, and one disassociation would then leave the stage protected.
        if current.get("ARN") != acl:
            waf.associate_web_acl(WebACLArn=acl, ResourceArn=resource)
        return Provisioned(id=f"{acl},{resource}", locator={"resource_arn": resource})

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        waf = ctx.client("wafv2")
        ignore_missing(lambda: waf.disassociate_web_acl(ResourceArn=record.locator["resource_arn"]))


def stage_arn_parts(arn: str) -> tuple[str, str] | None:
    """(rest api id, stage name) of an API Gateway stage ARN."""
    match = re.match(r"^arn:[^:]+:apigateway:[^:]*::/restapis/([^/]+)/stages/([^/]+)$", arn)
    return (match.group(1), match.group(2)) if match else None
