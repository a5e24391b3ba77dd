"""The sharing service: its IAM role, the FastAPI Lambda and the REST API in front of it.

Guarantees:
- the role reaches only its own tables, buckets and keys, with no wildcard actions on
  any data store, and may use the records key for envelope encryption only with a
  record's encryption context; it may never delete ledger entries;
- the API is regional with the TLS 1.3-only security policy and STRICT endpoint access
  mode; every method except ``GET /health`` needs a Cognito access token carrying one of
  ``API_AUTHORIZATION_SCOPES`` (what SRP sign-in and the authorization-code flow each
  grant); the stage throttles at the configured rate and burst and writes KMS-encrypted
  access logs;
- the record media types (``API_BINARY_MEDIA_TYPES``) pass API Gateway and the Lambda
  proxy integration as binary (base64 in the event), never as UTF-8 text;
- the function is invocable only by this API (source-ARN bound permission), and refuses
  access tokens older than the app client's declared validity;
- with ``waf`` on (every phase: the core's, in front of the one API) a WAF web ACL with
  a per-IP rate rule and AWS managed rule groups guards the stage. The common rule set's
  8 KB body-size rule counts instead of blocking, and our own rule blocks bodies over
  8 KB everywhere except the two record-upload routes, so uploads pass while every other
  managed rule still inspects them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.documents import assume_role_policy, policy_document
from infra.components.functions import log_group_arn, logged_function
from infra.components.keys import (
    AUDIT_HASH_CONTEXT_KEY,
    AUDIT_HASH_PURPOSE,
    PATIENT_INDEX_PURPOSE,
    RECORD_CONTEXT_KEYS,
)
from infra.components.web_client import SECURITY_HEADERS, SITE_PREFIX, metadata_key
from infra.stage import Capacity

API_SECURITY_POLICY = "SecurityPolicy_TLS13_1_3_2025_09"
API_ENDPOINT_ACCESS_MODE = "STRICT"
API_STAGE_NAME = "v1"
# An access token from SRP sign-in (SDKs, mobile clients) carries only
# aws.cognito.signin.user.admin; one from the hosted UI's authorization-code flow carries
# the OAuth scopes the client allows (openid, email, profile). API Gateway admits a token
# carrying at least one listed scope, and with any scope listed it refuses id tokens.
API_AUTHORIZATION_SCOPES = ("aws.cognito.signin.user.admin", "openid")
# What API Gateway passes to the Lambda proxy integration base64-encoded (and returns as
# bytes when the client's first Accept type matches): the binary record types
# (app/content.py) and generic bytes. FHIR JSON and text/plain stay text.
API_BINARY_MEDIA_TYPES = (
    "application/dicom",
    "application/pdf",
    "image/*",
    "application/octet-stream",
)
WAF_RATE_LIMIT_PER_5_MIN = 2000
WAF_COMMON_RULE_SET = "AWSManagedRulesCommonRuleSet"
WAF_MANAGED_RULE_GROUPS = (
    WAF_COMMON_RULE_SET,
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)
# The common rule set's SizeRestrictions_BODY blocks bodies over 8 KB, which would block
# every record upload: it counts instead, and WAF_BODY_SIZE_RULE blocks the same bodies
# outside the record-upload routes.
WAF_COUNTED_MANAGED_RULES = {WAF_COMMON_RULE_SET: ("SizeRestrictions_BODY",)}
WAF_BODY_SIZE_RULE = "body-size-outside-record-uploads"
WAF_MAX_BODY_BYTES = 8 * 1024
# The URI path WAF inspects includes the stage: POST /v1/patients/{id}/records and
# POST /v1/records/{id}/versions are the routes that take record content, and so does
# POST /v1/intake/messages (community-care intake: a CDA document is commonly far over
# 8 KB; the adapters cap each format, app/interop).
WAF_RECORD_UPLOAD_PATHS = (
    rf"^/{API_STAGE_NAME}/patients/[^/]+/records$|^/{API_STAGE_NAME}/records/[^/]+/versions$"
    rf"|^/{API_STAGE_NAME}/intake/messages$"
)

TABLE_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:ConditionCheckItem",
]
# The ledger is append-only: no DeleteItem. Other tables keep history by status fields,
# except crypto-shredding, which deletes a version's wrapped data key.
MUTABLE_TABLE_EXTRA_ACTIONS = ["dynamodb:DeleteItem"]


class ServiceRole(pulumi.ComponentResource):
    """The sharing service's execution role, declared first so key policies can name it."""

    role: aws.iam.Role

    def __init__(
        self,
        name: str,
        name_prefix: str,
        account_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("hub:service:ServiceRole", name, None, opts)
        self.role = aws.iam.Role(
            f"{name}-role",
            name=f"{name_prefix}-service",
            assume_role_policy=assume_role_policy(
                "lambda.amazonaws.com", source_account=account_id
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"role_arn": self.role.arn})


@dataclass(frozen=True)
class SharingServiceArgs:
    name_prefix: str
    region: str
    partition: pulumi.Input[str]
    account_id: pulumi.Input[str]
    phase: int
    stack: str
    role: aws.iam.Role
    capacity: Capacity
    waf: bool
    lambda_bundle: str
    self_registration: bool
    table_names: Mapping[str, pulumi.Input[str]]
    table_arns: Mapping[str, pulumi.Input[str]]
    shard_bucket_name: pulumi.Input[str]
    shard_bucket_arn: pulumi.Input[str]
    checkpoint_bucket_name: pulumi.Input[str]
    checkpoint_bucket_arn: pulumi.Input[str]
    records_key_arn: pulumi.Input[str]
    audit_key_arn: pulumi.Input[str]
    signing_key_arn: pulumi.Input[str]
    user_pool_id: pulumi.Input[str]
    user_pool_arn: pulumi.Input[str]
    user_pool_client_id: pulumi.Input[str]
    user_pool_federated_client_id: pulumi.Input[str]
    issuer: pulumi.Input[str]
    log_retention_days: int
    # The app client's declared access-token validity: the service refuses older tokens.
    access_token_validity_seconds: int = 15 * 60
    # Settings from other components (messaging: HUB_MATRIX_*, topics, queue).
    extra_environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # The web client's static site, served by this API under /web/ (infra/components/web_client.py).
    web: WebRoutes | None = None
    # Community-care intake (phase 2+, infra/components/intake.py): the scopes of
    # POST /intake/messages, the one method a clinic system's client-credentials token
    # passes; empty: no such method (the path then falls to {proxy+}, users' scopes).
    intake_scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class WebRoutes:
    """Where the API reads the web client's files: the site bucket, through its role."""

    bucket_name: pulumi.Input[str]
    reader_role_arn: pulumi.Input[str]


def service_environment(a: SharingServiceArgs) -> dict[str, pulumi.Input[str]]:
    """The ``HUB_*`` settings of the hub's functions (the API's; messaging's reuse them)."""
    env: dict[str, pulumi.Input[str]] = {
        "HUB_MODE": "aws",
        "HUB_STACK": a.stack,
        "HUB_PHASE": str(a.phase),
        # Which institutions are admitted is data (the institutions table), not config.
        "HUB_SELF_REGISTRATION": "true" if a.self_registration else "false",
        "HUB_LEDGER_TRAILS": str(a.capacity.ledger_trails),
        "HUB_SHARD_BUCKET": a.shard_bucket_name,
        "HUB_CHECKPOINT_BUCKET": a.checkpoint_bucket_name,
        "HUB_RECORDS_KEY_ARN": a.records_key_arn,
        "HUB_SIGNING_KEY_ARN": a.signing_key_arn,
        "HUB_AUDIT_KEY_ARN": a.audit_key_arn,
        "HUB_COGNITO_USER_POOL_ID": a.user_pool_id,
        "HUB_COGNITO_CLIENT_ID": a.user_pool_client_id,
        "HUB_COGNITO_FEDERATED_CLIENT_ID": a.user_pool_federated_client_id,
        "HUB_COGNITO_ISSUER": a.issuer,
        "HUB_MAX_TOKEN_AGE_SECONDS": str(a.access_token_validity_seconds),
    }
    for logical, table_name in a.table_names.items():
        env[f"HUB_TABLE_{logical.upper()}"] = table_name
    return env


class SharingService(pulumi.ComponentResource):
    function: aws.lambda_.Function
    api: aws.apigateway.RestApi
    stage: aws.apigateway.Stage
    api_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: SharingServiceArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("hub:service:SharingService", name, None, opts)
        self._name = name
        self._args = args
        self._function_name = f"{args.name_prefix}-api"

        policy = self._attach_role_policy()
        self.function = logged_function(
            f"{name}-api-function",
            function_name=self._function_name,
            handler="app.lambda_handler.handler",
            role_arn=args.role.arn,
            bundle=args.lambda_bundle,
            environment=self._environment(),
            audit_key_arn=args.audit_key_arn,
            log_retention_days=args.log_retention_days,
            parent=self,
            memory_mb=1024,
            reserved_concurrency=args.capacity.lambda_reserved_concurrency,
            depends_on=[policy],
        ).function
        self.api, self.stage = self._create_api()
        self.api_url = self.stage.invoke_url
        if args.waf:
            self._create_waf()
        self.register_outputs(
            {
                "api_url": self.api_url,
                "api_id": self.api.id,
                "function_name": self.function.name,
            }
        )

    def _environment(self) -> dict[str, pulumi.Input[str]]:
        return {**service_environment(self._args), **self._args.extra_environment}

    def _attach_role_policy(self) -> aws.iam.RolePolicy:
        a = self._args
        table_resources = [
            r
            for logical, arn in a.table_arns.items()
            if logical != "ledger"
            for r in (arn, pulumi.Output.concat(arn, "/index/*"))
        ]
        ledger = a.table_arns["ledger"]
        statements: list[dict[str, Any]] = [
            {
                "Sid": "ServiceTables",
                "Effect": "Allow",
                "Action": TABLE_ACTIONS + MUTABLE_TABLE_EXTRA_ACTIONS,
                "Resource": table_resources,
            },
            {
                "Sid": "LedgerAppendOnly",
                "Effect": "Allow",
                "Action": TABLE_ACTIONS,
                "Resource": [ledger, pulumi.Output.concat(ledger, "/index/*")],
            },
            {
                "Sid": "ShardObjects",
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:DeleteObjectVersion",
                ],
                "Resource": pulumi.Output.concat(a.shard_bucket_arn, "/*"),
            },
            {
                "Sid": "ShardListing",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": a.shard_bucket_arn,
            },
            {
                "Sid": "LedgerCheckpoints",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": pulumi.Output.concat(a.checkpoint_bucket_arn, "/ledger-checkpoints/*"),
            },
            {
                "Sid": "RecordEnvelopeKeys",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": a.records_key_arn,
                "Condition": {
                    "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": RECORD_CONTEXT_KEYS}
                },
            },
            {
                "Sid": "RecordKeyViaS3",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": [a.records_key_arn, a.audit_key_arn],
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{a.region}.amazonaws.com"}},
            },
            {
                # The audit hashing key is generated once by KMS and kept sealed in the
                # ledger table (app/audit/hash_key.py), bound to this context.
                "Sid": "AuditHashKeySealedByKms",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": a.audit_key_arn,
                "Condition": {"StringEquals": {AUDIT_HASH_CONTEXT_KEY: AUDIT_HASH_PURPOSE}},
            },
            {
                # The patient index key, likewise, in the patients table (app/patients).
                "Sid": "PatientIndexKeySealedByKms",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": a.audit_key_arn,
                "Condition": {"StringEquals": {AUDIT_HASH_CONTEXT_KEY: PATIENT_INDEX_PURPOSE}},
            },
            {
                # Whether an account is federated, and what its identity provider asserted
                # at sign-in, is read from the pool (cached); institution and roles come
                # from the institutions table on every request.
                "Sid": "ReadDoctorAttributes",
                "Effect": "Allow",
                "Action": ["cognito-idp:AdminGetUser"],
                "Resource": a.user_pool_arn,
            },
            {
                "Sid": "SignTreeHeads",
                "Effect": "Allow",
                "Action": ["kms:Sign", "kms:GetPublicKey"],
                "Resource": a.signing_key_arn,
            },
            {
                "Sid": "WriteOwnLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": pulumi.Output.concat(
                    log_group_arn(
                        a.region, a.partition, a.account_id, f"/aws/lambda/{self._function_name}"
                    ),
                    ":*",
                ),
            },
            {
                "Sid": "Tracing",
                "Effect": "Allow",
                "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                "Resource": "*",
            },
        ]
        return aws.iam.RolePolicy(
            f"{self._name}-role-policy",
            role=a.role.id,
            policy=policy_document(statements),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_api(self) -> tuple[aws.apigateway.RestApi, aws.apigateway.Stage]:
        a = self._args
        child = pulumi.ResourceOptions(parent=self)
        api = aws.apigateway.RestApi(
            f"{self._name}-api",
            name=f"{a.name_prefix}-api",
            description="Health Collaboration Hub sharing API",
            endpoint_configuration={"types": "REGIONAL"},
            security_policy=API_SECURITY_POLICY,
            endpoint_access_mode=API_ENDPOINT_ACCESS_MODE,
            binary_media_types=list(API_BINARY_MEDIA_TYPES),
            opts=child,
        )
        authorizer = aws.apigateway.Authorizer(
            f"{self._name}-authorizer",
            name="cognito",
            rest_api=api.id,
            type="COGNITO_USER_POOLS",
            provider_arns=[a.user_pool_arn],
            identity_source="method.request.header.Authorization",
            opts=child,
        )
        health = aws.apigateway.Resource(
            f"{self._name}-health",
            rest_api=api.id,
            parent_id=api.root_resource_id,
            path_part="health",
            opts=child,
        )
        proxy = aws.apigateway.Resource(
            f"{self._name}-proxy",
            rest_api=api.id,
            parent_id=api.root_resource_id,
            path_part="{proxy+}",
            opts=child,
        )

        methods: list[pulumi.Resource] = []
        users = tuple(API_AUTHORIZATION_SCOPES)
        # (part, resource id, http method, authorised?, scopes)
        routes: list[tuple[str, pulumi.Input[str], str, bool, tuple[str, ...]]] = [
            ("health", health.id, "GET", False, ()),
            ("proxy", proxy.id, "ANY", True, users),
            ("root", api.root_resource_id, "ANY", True, users),
        ]
        if a.intake_scopes:
            # Literal parts outrank {proxy+}: this method, with only the intake scope, is
            # what POST /intake/messages meets; users' tokens lack the scope (401 here).
            intake = aws.apigateway.Resource(
                f"{self._name}-intake",
                rest_api=api.id,
                parent_id=api.root_resource_id,
                path_part="intake",
                opts=child,
            )
            messages = aws.apigateway.Resource(
                f"{self._name}-intake-messages",
                rest_api=api.id,
                parent_id=intake.id,
                path_part="messages",
                opts=child,
            )
            routes.append(("intake-messages", messages.id, "POST", True, tuple(a.intake_scopes)))
        for part, resource_id, http_method, authorised, scopes in routes:
            method = aws.apigateway.Method(
                f"{self._name}-{part}-method",
                rest_api=api.id,
                resource_id=resource_id,
                http_method=http_method,
                authorization="COGNITO_USER_POOLS" if authorised else "NONE",
                authorizer_id=authorizer.id if authorised else None,
                # a scope means API Gateway accepts access tokens only, never id tokens
                authorization_scopes=list(scopes) if authorised else None,
                opts=child,
            )
            integration = aws.apigateway.Integration(
                f"{self._name}-{part}-integration",
                rest_api=api.id,
                resource_id=resource_id,
                http_method=method.http_method,
                integration_http_method="POST",
                type="AWS_PROXY",
                uri=self.function.invoke_arn,
                opts=child,
            )
            methods += [method, integration]
        web_routes: list[tuple[str, str, bool]] = []
        if a.web is not None:
            methods += self._create_web_routes(api, a.web)
            web_routes = [("web", "GET", False), ("web-asset", "GET", False)]

        aws.lambda_.Permission(
            f"{self._name}-api-invoke",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.concat(api.execution_arn, "/*/*"),
            opts=child,
        )
        deployment = aws.apigateway.Deployment(
            f"{self._name}-deployment",
            rest_api=api.id,
            triggers={"routes": json.dumps([(r[0], r[2], r[3]) for r in routes] + web_routes)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=methods),
        )
        access_logs = aws.cloudwatch.LogGroup(
            f"{self._name}-access-logs",
            name=f"/hub/{a.name_prefix}/api-access",
            kms_key_id=a.audit_key_arn,
            retention_in_days=a.log_retention_days,
            opts=child,
        )
        stage = aws.apigateway.Stage(
            f"{self._name}-stage",
            rest_api=api.id,
            deployment=deployment.id,
            stage_name=API_STAGE_NAME,
            xray_tracing_enabled=True,
            access_log_settings={
                "destination_arn": access_logs.arn,
                # identifiers only: never bodies, never query strings with patient ids
                "format": json.dumps(
                    {
                        "requestId": "$context.requestId",
                        "ip": "$context.identity.sourceIp",
                        "sub": "$context.authorizer.claims.sub",
                        "method": "$context.httpMethod",
                        "resource": "$context.resourcePath",
                        "status": "$context.status",
                        "latencyMs": "$context.responseLatency",
                        "time": "$context.requestTime",
                    }
                ),
            },
            opts=child,
        )
        aws.apigateway.MethodSettings(
            f"{self._name}-throttling",
            rest_api=api.id,
            stage_name=stage.stage_name,
            method_path="*/*",
            settings={
                "throttling_rate_limit": a.capacity.api_throttle_rate_limit,
                "throttling_burst_limit": a.capacity.api_throttle_burst_limit,
                "metrics_enabled": True,
                "logging_level": "ERROR",
                "data_trace_enabled": False,  # data traces would log request bodies
            },
            opts=child,
        )
        return api, stage

    def _create_web_routes(
        self, api: aws.apigateway.RestApi, web: WebRoutes
    ) -> list[pulumi.Resource]:
        """GET /web and GET /web/{asset+}: the site's files from its bucket, without a
        token (the sign-in page must load before there is one), through an S3 integration
        (never the function), each response carrying the file's security headers."""
        a = self._args
        child = pulumi.ResourceOptions(parent=self)
        site = aws.apigateway.Resource(
            f"{self._name}-web",
            rest_api=api.id,
            parent_id=api.root_resource_id,
            path_part="web",
            opts=child,
        )
        asset = aws.apigateway.Resource(
            f"{self._name}-web-asset",
            rest_api=api.id,
            parent_id=site.id,
            path_part="{asset+}",
            opts=child,
        )
        header_names = ("Content-Type", "Cache-Control", *SECURITY_HEADERS)
        created: list[pulumi.Resource] = []
        for part, resource, key, params in (
            ("web", site, "index.html", None),
            ("web-asset", asset, "{asset}", {"method.request.path.asset": True}),
        ):
            method = aws.apigateway.Method(
                f"{self._name}-{part}-method",
                rest_api=api.id,
                resource_id=resource.id,
                http_method="GET",
                authorization="NONE",
                request_parameters=params,
                opts=child,
            )
            integration = aws.apigateway.Integration(
                f"{self._name}-{part}-integration",
                rest_api=api.id,
                resource_id=resource.id,
                http_method=method.http_method,
                type="AWS",
                integration_http_method="GET",
                uri=pulumi.Output.concat(
                    f"arn:aws:apigateway:{a.region}:s3:path/",
                    web.bucket_name,
                    "/",
                    SITE_PREFIX,
                    key,
                ),
                credentials=web.reader_role_arn,
                request_parameters=(
                    {"integration.request.path.asset": "method.request.path.asset"}
                    if params
                    else None
                ),
                opts=child,
            )
            ok = aws.apigateway.MethodResponse(
                f"{self._name}-{part}-200",
                rest_api=api.id,
                resource_id=resource.id,
                http_method=method.http_method,
                status_code="200",
                response_parameters={f"method.response.header.{h}": True for h in header_names},
                opts=child,
            )
            missing = aws.apigateway.MethodResponse(
                f"{self._name}-{part}-404",
                rest_api=api.id,
                resource_id=resource.id,
                http_method=method.http_method,
                status_code="404",
                opts=child,
            )
            mapped = {
                "method.response.header.Content-Type": "integration.response.header.Content-Type",
                "method.response.header.Cache-Control": "integration.response.header.Cache-Control",
                **{
                    f"method.response.header.{h}": (
                        f"integration.response.header.x-amz-meta-{metadata_key(h)}"
                    )
                    for h in SECURITY_HEADERS
                },
            }
            served = aws.apigateway.IntegrationResponse(
                f"{self._name}-{part}-200-response",
                rest_api=api.id,
                resource_id=resource.id,
                http_method=method.http_method,
                status_code=ok.status_code,
                response_parameters=mapped,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[integration]),
            )
            # S3 answers 403 for a key that does not exist (the role may not list):
            # the client sees 404 and nothing of S3's error document.
            not_found = aws.apigateway.IntegrationResponse(
                f"{self._name}-{part}-404-response",
                rest_api=api.id,
                resource_id=resource.id,
                http_method=method.http_method,
                status_code=missing.status_code,
                selection_pattern=r"4\d{2}",
                response_templates={"application/json": '{"message": "Not Found"}'},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[integration]),
            )
            created += [method, integration, ok, missing, served, not_found]
        return created

    def _create_waf(self) -> aws.wafv2.WebAcl:
        return web_acl(self._name, self._args.name_prefix, self.stage.arn, self)

    @staticmethod
    def _body_size_rule(
        priority: int, visibility: aws.wafv2.WebAclVisibilityConfigArgsDict
    ) -> aws.wafv2.WebAclRuleArgsDict:
        """Blocks bodies over 8 KB except on the record-upload routes.

        Why this and not a scope-down statement on the managed group: a scope-down would
        exempt uploads from every rule of the common rule set (cross-site scripting, LFI,
        RFI, bad bots...), where only its body-size rule is wrong for them. Counting that
        one rule and re-adding it here, scoped, keeps every other protection on uploads.
        """
        no_transformation: list[
            aws.wafv2.WebAclRuleStatementSizeConstraintStatementTextTransformationArgsDict
        ] = [{"priority": 0, "type": "NONE"}]
        return {
            "name": WAF_BODY_SIZE_RULE,
            "priority": priority,
            "action": {"block": {}},
            "statement": {
                "and_statement": {
                    "statements": [
                        {
                            "size_constraint_statement": {
                                "comparison_operator": "GT",
                                "size": WAF_MAX_BODY_BYTES,
                                # bodies beyond WAF's inspection limit count as oversize
                                "field_to_match": {"body": {"oversize_handling": "MATCH"}},
                                "text_transformations": no_transformation,
                            }
                        },
                        {
                            "not_statement": {
                                "statement": {
                                    "regex_match_statement": {
                                        "regex_string": WAF_RECORD_UPLOAD_PATHS,
                                        "field_to_match": {"uri_path": {}},
                                        "text_transformations": [{"priority": 0, "type": "NONE"}],
                                    }
                                }
                            }
                        },
                    ]
                }
            },
            "visibility_config": visibility,
        }


def web_acl(
    name: str, name_prefix: str, stage_arn: pulumi.Input[str], parent: pulumi.Resource
) -> aws.wafv2.WebAcl:
    """The web ACL (per-IP rate rule, AWS managed rule groups, the scoped body-size rule)
    and its association with the API stage ``stage_arn``."""
    child = pulumi.ResourceOptions(parent=parent)

    def visibility(metric: str) -> aws.wafv2.WebAclVisibilityConfigArgsDict:
        return {
            "cloudwatch_metrics_enabled": True,
            "metric_name": metric,
            "sampled_requests_enabled": True,
        }

    rules: list[aws.wafv2.WebAclRuleArgsDict] = [
        {
            "name": "per-ip-rate-limit",
            "priority": 0,
            "action": {"block": {}},
            "statement": {
                "rate_based_statement": {
                    "limit": WAF_RATE_LIMIT_PER_5_MIN,
                    "aggregate_key_type": "IP",
                }
            },
            "visibility_config": visibility("per-ip-rate-limit"),
        }
    ]
    for priority, group in enumerate(WAF_MANAGED_RULE_GROUPS, start=1):
        statement: aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementArgsDict = {
            "name": group,
            "vendor_name": "AWS",
        }
        counted = WAF_COUNTED_MANAGED_RULES.get(group, ())
        if counted:
            statement["rule_action_overrides"] = [
                {"name": rule, "action_to_use": {"count": {}}} for rule in counted
            ]
        rules.append(
            {
                "name": group,
                "priority": priority,
                "override_action": {"none": {}},
                "statement": {"managed_rule_group_statement": statement},
                "visibility_config": visibility(group),
            }
        )
    rules.append(SharingService._body_size_rule(len(rules), visibility(WAF_BODY_SIZE_RULE)))
    acl = aws.wafv2.WebAcl(
        f"{name}-waf",
        name=f"{name_prefix}-api-waf",
        scope="REGIONAL",
        default_action={"allow": {}},
        rules=rules,
        visibility_config=visibility(f"{name_prefix}-api-waf"),
        opts=child,
    )
    aws.wafv2.WebAclAssociation(
        f"{name}-waf-association",
        resource_arn=stage_arn,
        web_acl_arn=acl.arn,
        opts=child,
    )
    return acl
