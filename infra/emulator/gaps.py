"""The properties the emulator declares but cannot make the emulator enforce.

Each gap says what was not enforced, why, and which checks cover the property instead:
(the local API gateway, ``infra/emulator/gateway``, enforces much of what moto's API
Gateway, WAF and Lambda do not; what it cannot emulate is a gap here too)
policy-pack policy names (``infra/policies``, kebab-case, pre-deploy, over the declared
inputs), verify check ids (``infra/verify``, ``<area>.<check>``, post-deploy, against the
live resource or, where the emulator cannot hold it, the declared document kept in the
deployment record) and the unit tests that prove the declared property. Only checks that exist are
named. Nothing here pretends: a gap is recorded whenever the matching resource deploys.

The second emulator, LocalStack (the ``--aws-backend=localstack`` tier: S3, KMS, IAM, STS
and Lambda on LocalStack, the rest on moto), behaves differently from moto in places;
each difference found is a gap too. Those that concern a deployed resource are recorded
with it when LocalStack serves it; ``LOCALSTACK_DIFFERENCES`` lists them all, including
the ones no resource carries (DynamoDB unavailable, the account id).
"""

from __future__ import annotations

from infra.emulator.record import Gap

# The property a database's key gap names: verify reads it back from the record, and
# verify must not depend on the emulator (it checks real deployments), so it owns the name.
from infra.verify.record import DATABASE_KEY_ELSEWHERE

KEY = "aws:kms/key:Key"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
USER_POOL = "aws:cognito/userPool:UserPool"
USER_POOL_CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
RESOURCE_SERVER = "aws:cognito/resourceServer:ResourceServer"
INTEGRATION = "aws:apigateway/integration:Integration"
IDENTITY_PROVIDER = "aws:cognito/identityProvider:IdentityProvider"
USER_POOL_CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
TRAIL = "aws:cloudtrail/trail:Trail"
REST_API = "aws:apigateway/restApi:RestApi"
STAGE = "aws:apigateway/stage:Stage"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
FUNCTION = "aws:lambda/function:Function"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
TOPIC_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
TABLE = "aws:dynamodb/table:Table"
BUCKET_OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
CALLER_IDENTITY = "aws:index/getCallerIdentity:getCallerIdentity"
VPC = "aws:ec2/vpc:Vpc"
DB_INSTANCE = "aws:rds/instance:Instance"
LISTENER = "aws:lb/listener:Listener"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
CERTIFICATE = "aws:acm/certificate:Certificate"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
MESSAGING_TESTS = "tests/infra/test_messaging_component.py::"
BUCKET_CORS = "aws:s3/bucketCorsConfiguration:BucketCorsConfiguration"

MOTO = "moto (the emulator)"
LOCALSTACK = "LocalStack 4.14 (the --aws-backend=localstack tier)"


def conditional_bucket_policy(resource: str, dropped_sids: list[str], emulator: str = MOTO) -> Gap:
    return Gap(
        resource=resource,
        type=BUCKET_POLICY,
        property="policy",
        not_enforced=(
            "conditional statements " + ", ".join(dropped_sids) + " were not "
            "handed to the emulator; the declared document is kept in the "
            "deployment record (inputs.policy) and the applied one in "
            "state.appliedPolicy"
        ),
        reason=(
            f"{emulator} ignores Condition blocks in bucket policies, so a conditional "
            "Deny (aws:SecureTransport=false, s3:TlsVersion<1.2, missing SSE-KMS header) "
            "would deny every request, and a conditional Allow would apply "
            "unconditionally"
        ),
        covered_by=(
            "bucket-policy-denies-insecure-transport",
            "every-bucket-denies-insecure-transport",
            "buckets.denies_insecure_transport",
            "tests/infra/test_component_controls.py::"
            "test_shard_policy_denies_plain_http_old_tls_and_foreign_keys",
        ),
    )


def key_policy(resource: str, emulator: str = MOTO) -> Gap:
    return Gap(
        resource=resource,
        type=KEY,
        property="policy",
        not_enforced=(
            "the key policy is stored (GetKeyPolicy returns it) but not evaluated: "
            "any caller may use the key"
        ),
        reason=f"{emulator} does not evaluate KMS key policies or encryption-context conditions",
        covered_by=(
            "tests/infra/test_component_controls.py::"
            "test_key_policies_give_root_no_cryptographic_use",
            "tests/infra/test_component_controls.py::"
            "test_service_envelope_use_requires_the_record_context",
            "tests/infra/test_component_controls.py::"
            "test_cloudtrail_may_use_the_audit_key_only_for_our_trail",
        ),
    )


def cognito_triggers(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=USER_POOL,
        property="lambdaConfig",
        not_enforced=(
            "the pre sign-up and pre token generation triggers are configured but "
            "never invoked: sign-up is not checked against the Medical Council "
            "register and tokens carry no institution/role claims from the trigger"
        ),
        reason=f"{MOTO} does not invoke Cognito Lambda triggers (and cannot run Lambda "
        "code without Docker)",
        covered_by=(
            "tests/app/identity/test_cognito_triggers.py (the trigger handlers "
            "run in-process against the register table)",
            "tests/infra/test_component_controls.py::test_user_pool_attributes_and_triggers",
        ),
    )


def client_attribute_permissions(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=USER_POOL_CLIENT,
        property="writeAttributes/readAttributes",
        not_enforced=(
            "the client's read and write attributes are stored (DescribeUserPoolClient "
            "returns them) but not enforced: a user's UpdateUserAttributes with their own "
            "access token may set any attribute, granting ones included (nor does the "
            "emulator refuse writes to immutable attributes)"
        ),
        reason=f"{MOTO} does not check a client's attribute permissions",
        covered_by=(
            "cognito-client-cannot-write-granting-attributes",
            "cognito.client_write_attributes",
            "tests/infra/test_component_controls.py::"
            "test_no_client_lets_users_write_granting_attributes",
            "tests/app/identity/test_attribute_authority.py (the service reads no "
            "user-writable attribute: rewriting every granting attribute changes nothing "
            "it believes)",
        ),
    )


def cognito_threat_protection(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=USER_POOL,
        property="userPoolAddOns.advancedSecurityMode",
        not_enforced="threat protection (advanced security) and the Plus tier are stored only",
        reason=f"{MOTO} has no adaptive authentication or compromised-credential checks",
        covered_by=(
            "cognito-user-pool-requires-mfa",
            "cognito.mfa_on",
            "tests/infra/test_component_controls.py::"
            "test_user_pool_requires_mfa_and_strong_passwords",
        ),
    )


def federation(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=IDENTITY_PROVIDER,
        property="providerDetails",
        not_enforced="the institution IdP's metadata is not fetched and federated sign-in "
        "is not exercised (nor the pre-token trigger that places federated users)",
        reason=f"{MOTO} stores identity providers without contacting them (and the "
        "emulator never leaves loopback)",
        covered_by=(
            "cognito.federation",
            "cognito.providers_release_placement_claims",
            "cognito-providers-release-placement-claims",
            "tests/infra/test_component_controls.py::"
            "test_federation_declares_each_provider_with_attribute_mapping",
            "tests/app/identity/test_cognito_triggers.py (synthetic SAML and OIDC "
            "assertions through the declared mapping and the trigger)",
        ),
    )


def trail_delivery(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=TRAIL,
        property="s3BucketName/cloudWatchLogsGroupArn",
        not_enforced=(
            "no log files, digest files or CloudWatch Logs events are delivered; "
            "log-file validation and KMS encryption of logs are configured only"
        ),
        reason=f"{MOTO} records trail configuration and logging status but delivers nothing",
        covered_by=(
            "cloudtrail-validated-multi-region-and-kms-encrypted",
            "trail.logging",
            "trail.log_file_validation",
            "trail.kms_encrypted",
            "trail.data_event_selectors",
            "trail.bucket_object_lock",
        ),
    )


def trail_insights(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=TRAIL,
        property="insightSelectors",
        not_enforced=(
            "Insights selectors are stored but no Insights events are produced, and they "
            "cannot be cleared (PutInsightSelectors appends), so an Insights switch-off is "
            "shown on the declared inputs and on evaluation, not live"
        ),
        reason=f"{MOTO} keeps the selectors as a list it only extends and analyses nothing",
        covered_by=(
            "cloudtrail-records-insights-and-function-events",
            "trail.insights",
        ),
    )


def api_tls_policy(resource: str, stored: bool) -> Gap:
    how = "stored but not enforced" if stored else "not stored (GetRestApi does not return it)"
    return Gap(
        resource=resource,
        type=REST_API,
        property="securityPolicy/endpointAccessMode",
        not_enforced=f"the TLS 1.3 security policy and STRICT endpoint access mode are {how}; "
        "the emulator serves plain HTTP on loopback",
        reason=f"{MOTO} has no TLS termination for REST APIs",
        covered_by=("api-enforces-tls13-security-policy", "api.tls_policy"),
    )


def api_authorizer(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=STAGE,
        property="methods' authorization",
        not_enforced=(
            "moto's API Gateway stores the Cognito authorizer, scopes, binary media types "
            "and throttling but never invokes the integration; the local gateway "
            "(infra/emulator/gateway) serves the declared stage instead and enforces them, "
            "except TLS (plain HTTP on loopback: see the REST API's securityPolicy gap), "
            "API Gateway's account-level throttle and authorizer caching beyond its TTL"
        ),
        reason=f"{MOTO} cannot execute the Lambda integration without Docker",
        covered_by=(
            "api.authorizer_on_methods",
            "tests/infra/test_component_controls.py::"
            "test_every_method_but_health_needs_a_cognito_access_token",
            "tests/app/test_service_through_gateway.py::test_switch_off_openid_only_scope_refuses_an_srp_token",
            "tests/infra/emulator/test_gateway_limits_and_waf.py::"
            "test_the_declared_throttle_admits_the_burst_then_the_rate",
        ),
    )


def waf(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=WEB_ACL,
        property="rules",
        not_enforced=(
            "moto inspects no request; the local gateway evaluates the declared web ACL "
            "(the per-IP rate rule, our own statements, and the common rule set's size and "
            "user-agent rules with their overrides) but not the managed groups' signature "
            "and reputation rules: cross-site scripting, SQL injection, LFI/RFI, bad bots, "
            "known bad inputs, IP reputation"
        ),
        reason=f"{MOTO} does not evaluate WAF rules, and AWS's managed signatures are not "
        "published",
        covered_by=(
            "tests/infra/test_component_controls.py::test_waf_guards_the_stage_when_enabled",
            "tests/infra/test_phase_stacks.py::test_waf_in_front_of_the_one_api_from_phase_1",
            "tests/infra/emulator/test_gateway_limits_and_waf.py::"
            "test_record_uploads_over_8_kb_pass_and_other_large_bodies_are_blocked",
            "tests/infra/emulator/test_gateway_limits_and_waf.py::"
            "test_the_rate_based_rule_blocks_an_ip_over_its_limit",
        ),
    )


def gateway_lambda_runtime(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=INTEGRATION,
        property="uri (the Lambda proxy integration)",
        not_enforced=(
            "the local gateway invokes the function's handler in its own process: no cold "
            "start, no isolated execution environment, memory not limited; past the "
            "reserved concurrency requests queue instead of being throttled; an invocation "
            "past its timeout is answered (502/504) but not stopped"
        ),
        reason="Lambda execution environments need Docker or AWS; the emulator has neither",
        covered_by=(
            "tests/infra/emulator/test_gateway_limits_and_waf.py::test_the_declared_function_timeout_is_a_502",
            "tests/infra/emulator/test_gateway_limits_and_waf.py::test_the_integration_timeout_is_a_504",
            "tests/infra/emulator/test_gateway_limits_and_waf.py::test_lambda_response_over_6_mb_is_a_502",
        ),
    )


def gateway_s3_integration_role(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=INTEGRATION,
        property="credentials (the S3 integration's role)",
        not_enforced=(
            "the local gateway reads the web client's files from the emulator's S3 with the "
            "emulator's credentials, not by assuming the declared reader role, and serves "
            "S3 objects as stored (no contentHandling conversion); it reads only the key the "
            "declared integration URI names (site/...)"
        ),
        reason="moto evaluates no IAM policy and API Gateway's S3 integrations run no request",
        covered_by=(
            "tests/infra/test_web_client.py::test_the_reader_role_reads_the_site_and_nothing_else",
            "tests/infra/emulator/test_gateway_web_site.py::test_only_keys_under_the_declared_prefix_are_served",
        ),
    )


def aws_endpoints_on_the_emulator(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=BUCKET_OBJECT,
        property="content / metadata (the AWS endpoints the site reaches)",
        not_enforced=(
            "the site's config.json and Content-Security-Policy name the stack's AWS "
            "endpoints (https://cognito-idp.ap-east-1.amazonaws.com, the shard bucket's "
            "https://<bucket>.s3.ap-east-1.amazonaws.com); served by the local gateway, the "
            "emulator's loopback endpoint stands in for exactly those origins, over HTTP"
        ),
        reason="the browser must reach the emulator instead of AWS; there is no TLS on loopback",
        covered_by=(
            "tests/infra/test_web_client.py::test_the_policy_allows_only_the_stack_endpoints",
            "tests/infra/emulator/test_gateway_web_site.py::test_the_emulator_stands_in_for_exactly_the_declared_endpoints",
        ),
    )


def cognito_client_flows(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=USER_POOL_CLIENT,
        property="explicitAuthFlows",
        not_enforced=(
            "the client allows only ALLOW_USER_SRP_AUTH and ALLOW_REFRESH_TOKEN_AUTH, but "
            "USER_PASSWORD_AUTH and ADMIN_USER_PASSWORD_AUTH sign in too"
        ),
        reason=f"{MOTO} stores a client's explicit auth flows without enforcing them",
        covered_by=(
            "cognito-app-client-srp-only-with-short-tokens",
            "tests/app/identity/test_sign_in.py::"
            "test_moto_accepts_a_password_flow_the_client_does_not_allow",
        ),
    )


def cognito_token_endpoint(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=RESOURCE_SERVER,
        property="the pool domain's /oauth2/token (client_credentials grant)",
        not_enforced=(
            "moto serves no OAuth token endpoint; the emulator's stand-in "
            "(infra/emulator/cognito_token.py, at <emulator>/_cognito/<domain>/oauth2/token) "
            "mints client-credentials access tokens from moto's state: HTTP Basic client "
            "authentication against the client's secret, the client's allowed flows and "
            "scopes, the resource server's scopes and the client's access-token validity, "
            "signed with the key moto signs every pool's tokens with. Not emulated: the "
            "domain's TLS and host name, Cognito's rate limits, token revocation, and the "
            "pre token generation trigger for machine tokens"
        ),
        reason=f"{MOTO} stores resource servers and app clients but has no /oauth2/token",
        covered_by=(
            "cognito.intake_channel",
            "tests/infra/emulator/test_cognito_token.py::"
            "test_token_endpoint_refuses_what_cognito_refuses",
        ),
    )


def cognito_sign_in_challenges(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=USER_POOL_CLIENT,
        property="sign-in (SRP password claim, TOTP challenge)",
        not_enforced=(
            "USER_SRP_AUTH's password claim is not verified (any password completes SRP); "
            "TOTP codes are checked only when MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP is set "
            "(the local platform and the tests set it), against moto's fixed secret; "
            "ADMIN_USER_PASSWORD_AUTH issues tokens without the TOTP challenge to a user "
            "who enrolled TOTP at sign-in without setting an MFA preference"
        ),
        reason=f"{MOTO} implements the SRP and MFA message flow, not Cognito's checks",
        covered_by=(
            "cognito-user-pool-requires-mfa",
            "cognito.mfa_on",
            "cognito-app-client-srp-only-with-short-tokens",
            "tests/app/identity/test_sign_in.py::test_a_wrong_totp_code_is_refused",
        ),
    )


def cognito_token_lifetime(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=USER_POOL_CLIENT,
        property="accessTokenValidity",
        not_enforced="access tokens live 3600 s where the client declares 15 minutes",
        reason=f"{MOTO} signs every access token for an hour, whatever the client declares",
        covered_by=(
            "cognito-app-client-srp-only-with-short-tokens",
            "tests/app/identity/test_jwt_attacks.py::"
            "test_token_older_than_the_declared_validity_is_refused",
        ),
    )


def lambda_execution(resource: str, emulator: str = MOTO) -> Gap:
    return Gap(
        resource=resource,
        type=FUNCTION,
        property="code",
        not_enforced=(
            "the function is created from a zip of app/ source (without its "
            "dependencies) and never executed; reserved concurrency, tracing and "
            "the JSON log configuration are stored only"
        ),
        reason=f"{emulator} runs Lambda code only through Docker, which this platform does not use",
        covered_by=(
            "lambda-not-publicly-invocable",
            "lambda.role_least_privilege",
            "lambda.no_public_policy",
            "tests/app (the service code runs in-process)",
        ),
    )


def topic_policy(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=TOPIC_POLICY,
        property="policy",
        not_enforced="the topic policy is stored but not evaluated on publish",
        reason=f"{MOTO} does not evaluate SNS topic policies",
        covered_by=(
            "tests/infra/test_component_controls.py::test_cis_alarms_notify_an_encrypted_topic",
        ),
    )


def alarm_delivery(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=TOPIC_SUBSCRIPTION,
        property="endpoint",
        not_enforced="no email is sent; the subscription stays pending confirmation",
        reason=f"{MOTO} does not deliver email notifications",
        covered_by=(
            "tests/infra/test_component_controls.py::test_cis_alarms_notify_an_encrypted_topic",
        ),
    )


def presigned_shard_urls(resource: str, emulator: str = MOTO) -> Gap:
    return Gap(
        resource=resource,
        type=BUCKET_CORS,
        property="presigned shard URLs",
        not_enforced=(
            "a presigned shard PUT or GET is served without checking its signature or "
            "expiry: a request may drop or change the signed Content-Length, SSE-KMS, "
            "CRC64NVME or If-None-Match headers, or come after X-Amz-Expires; a supplied "
            "x-amz-checksum-* value is stored without being checked against the body"
        ),
        reason=(
            f"{emulator} does not verify SigV4 query signatures, their expiry or the "
            "signed headers, and never validates a supplied checksum (moto 5.2.5)"
        ),
        covered_by=(
            "tests/app/records/test_upload_sessions.py::"
            "test_presigned_urls_verify_as_s3_would_and_fail_without_any_signed_part",
            "tests/app/records/test_upload_sessions.py::"
            "test_a_shard_put_without_sse_kms_or_its_checksum_never_commits",
            "tests/app/records/test_upload_sessions.py::test_commit_refuses_a_resized_shard",
            "tests/app/records/test_upload_sessions.py::"
            "test_a_put_replayed_after_commit_changes_nothing_that_opens",
        ),
    )


def cors_not_enforced(resource: str, emulator: str = MOTO) -> Gap:
    return Gap(
        resource=resource,
        type=BUCKET_CORS,
        property="corsRules",
        not_enforced=(
            "the CORS rule (the hub's web origins only) is stored; every response says "
            "Access-Control-Allow-Origin: *"
        ),
        reason=f"{emulator} answers CORS for any origin whatever the bucket's rules",
        covered_by=(
            "tests/infra/test_component_controls.py::test_shard_cors_allows_only_the_hubs_origins",
        ),
    )


# ------------------------------------------------------ LocalStack differs from moto


def trail_bucket_on_another_emulator(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=TRAIL,
        property="s3BucketName",
        not_enforced=(
            "the trail (on moto) names the audit bucket, which lives with S3 on "
            "LocalStack; moto only checks that its own S3 holds a bucket of that name, "
            "so the emulator creates an empty one there"
        ),
        reason=(
            f"{LOCALSTACK} has no CloudTrail, so the tier splits services across two "
            "emulators, and moto's CreateTrail looks the bucket up in moto's own S3"
        ),
        covered_by=(
            "trail.bucket_object_lock",
            "trail.logging",
            "cloudtrail-validated-multi-region-and-kms-encrypted",
        ),
    )


def lambda_never_ready(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=FUNCTION,
        property="state",
        not_enforced=(
            "the function is created but stays in State Failed (LocalStack cannot "
            "install its Lambda runtime); LocalStack refuses to update or delete a "
            "function that is not ready, so a redeploy leaves its configuration and code "
            "as first created and destroy reports it as failed"
        ),
        reason=(
            f"{LOCALSTACK} runs Lambda only through Docker and downloads its runtime "
            "from the internet; moto reports the same function Active"
        ),
        covered_by=(
            "lambda-not-publicly-invocable",
            "lambda.role_least_privilege",
            "lambda.no_public_policy",
            "tests/app (the service code runs in-process)",
        ),
    )


def bucket_policy_not_evaluated(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=BUCKET_POLICY,
        property="policy (evaluation)",
        not_enforced=(
            "no statement of the applied bucket policy is evaluated, not even the "
            "unconditional ones (moto answers 403 to a request an unconditional Deny "
            "matches; LocalStack lets it through)"
        ),
        reason=f"{LOCALSTACK} community edition stores bucket policies without enforcing them",
        covered_by=(
            "bucket-policy-denies-insecure-transport",
            "every-bucket-denies-insecure-transport",
            "buckets.denies_insecure_transport",
            "buckets.requires_sse_kms_puts",
            "tests/infra/test_component_controls.py::"
            "test_shard_policy_denies_plain_http_old_tls_and_foreign_keys",
        ),
    )


def dynamodb_unavailable(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=TABLE,
        property="*",
        not_enforced=(
            "tables stay on moto in the LocalStack tier: on this network every LocalStack "
            "DynamoDB call answers 500 InternalError (set HUB_LOCALSTACK_SERVICES to add "
            "dynamodb where LocalStack's DynamoDB works)"
        ),
        reason=(
            f"{LOCALSTACK} serves DynamoDB through DynamoDB Local, which needs Java 21 and "
            "the DynamoDB Local archive, both downloaded at first use from github.com and "
            "AWS hosts that this network does not reach"
        ),
        covered_by=(
            "dynamodb.pitr",
            "dynamodb.deletion_protection",
            "dynamodb.customer_key_encryption",
        ),
    )


def account_from_access_key(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=CALLER_IDENTITY,
        property="Account",
        not_enforced=(
            "the two emulators only agree on the account when the access key id is the "
            "12-digit account id: the LocalStack tier uses access key 123456789012"
        ),
        reason=(
            f"{LOCALSTACK} takes the account id from a 12-digit access key id and uses "
            "000000000000 otherwise; moto uses 123456789012 for any unknown key"
        ),
        covered_by=(
            "tests/infra/emulator/test_emulator_backends.py::"
            "test_both_emulators_agree_on_the_account",
        ),
    )


def key_rotations_not_listed(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=KEY,
        property="rotations",
        not_enforced=(
            "ListKeyRotations answers InternalFailure (not emulated); rotation itself "
            "(EnableKeyRotation, RotateKeyOnDemand, GetKeyRotationStatus) works, and "
            "tests that list rotations skip naming the operation"
        ),
        reason=f"{LOCALSTACK} community edition does not emulate KMS ListKeyRotations",
        covered_by=(
            "keys.rotation_enabled",
            "tests/app/crypto/test_data_key_providers.py::"
            "test_kms_records_sealed_before_rotation_still_open",
        ),
    )


# Every difference found between moto and LocalStack, for every resource ("*"); the
# per-resource ones are also recorded in the deployment record when they apply.
LOCALSTACK_DIFFERENCES: tuple[Gap, ...] = (
    trail_bucket_on_another_emulator("*"),
    lambda_never_ready("*"),
    bucket_policy_not_evaluated("*"),
    dynamodb_unavailable("*"),
    account_from_access_key("*"),
    key_rotations_not_listed("*"),
)


# --- messaging (infra/components/messaging.py) ------------------------------------------------


def network_isolation(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=VPC,
        property="subnets, routes, securityGroups",
        not_enforced=(
            "the VPC, its subnets, route tables and security groups are stored; no traffic "
            "flows, so nothing is isolated or filtered"
        ),
        reason=f"{MOTO} keeps EC2 networking as data and moves no packets",
        covered_by=(
            "database-not-publicly-accessible",
            "messaging.database_not_public",
            MESSAGING_TESTS + "test_the_private_subnets_have_no_route_to_the_internet",
            MESSAGING_TESTS + "test_only_the_declared_callers_reach_each_security_group",
        ),
    )


def database_engine(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=DB_INSTANCE,
        property="storageEncrypted, kmsKeyId, parameterGroupName (rds.force_ssl)",
        not_enforced=(
            "no PostgreSQL runs: storage encryption, the TLS-only parameter, backups and "
            "deletion protection are stored settings (DescribeDBInstances and "
            "DescribeDBParameters return them), not enforced"
        ),
        reason=f"{MOTO} stores RDS instances and starts no database engine",
        covered_by=(
            "database-encrypted-with-customer-kms-key",
            "database-requires-tls",
            "messaging.database_encrypted",
            "messaging.database_requires_tls",
        ),
    )


def database_key_on_another_emulator(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=DB_INSTANCE,
        property=DATABASE_KEY_ELSEWHERE,
        not_enforced=(
            "the keys live on LocalStack while moto serves RDS and Secrets Manager, and "
            "moto fails on a key its own KMS does not hold: the instance is created "
            "without them, so the recorded keys are the declared ones, not the live ones"
        ),
        reason=f"{LOCALSTACK} serves KMS; {MOTO} serves RDS",
        covered_by=(
            "database-encrypted-with-customer-kms-key",
            "messaging.database_encrypted",
        ),
    )


def listener_tls(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=LISTENER,
        property="sslPolicy",
        not_enforced="the TLS policy is stored; no TLS handshake happens at all",
        reason=f"{MOTO}'s load balancers accept and route no connections",
        covered_by=("load-balancer-listeners-use-tls13", "messaging.listener_tls13"),
    )


def homeserver_tasks(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=TASK_DEFINITION,
        property="containerDefinitions",
        not_enforced=(
            "no homeserver task runs: the declared homeserver.yaml (closed federation, no "
            "open registration) is stored in the task definition, not executed; the local "
            "platform runs the same project code as Synapse on loopback"
        ),
        reason=f"{MOTO} stores ECS task definitions and services and starts no container",
        covered_by=(
            "homeserver-federation-closed",
            "messaging.federation_closed",
            "tests/app/messaging/test_messaging_synapse.py::test_federation_is_refused",
        ),
    )


def certificate_validation(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=CERTIFICATE,
        property="validationMethod",
        not_enforced=(
            "the certificate is requested, never validated by DNS; in AWS the listeners "
            "wait until the operator adds the validation records (docs/messaging.md)"
        ),
        reason=f"{MOTO} issues no certificate and resolves no DNS",
        covered_by=("load-balancer-listeners-use-tls13", "messaging.listener_tls13"),
    )


def dispatch_schedule(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=EVENT_RULE,
        property="scheduleExpression",
        not_enforced=(
            "the schedule never fires and the dispatcher function never runs; the local "
            "platform runs the same dispatcher as a background loop"
        ),
        reason=f"{MOTO} triggers no rule and runs no Lambda code",
        covered_by=(
            "tests/app/test_outbox_dispatcher.py::test_a_failing_delivery_is_retried_then_dead_lettered",
            "tests/scripts/test_demo_messaging.py::test_walkthrough_end_to_end",
        ),
    )


# ------------------------------------------------------------------------------ AWS Backup

BACKUP_SELECTION = "aws:backup/selection:Selection"
BACKUP_PLAN = "aws:backup/plan:Plan"


def backup_selection(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=BACKUP_SELECTION,
        property="resources",
        not_enforced=(
            "the selection (the tables and buckets the plan backs up, and the role AWS "
            "Backup uses) is kept only in the deployment record: no backup job runs, no "
            "recovery point is made and nothing can be restored from the vault; verify "
            "does not ask the emulator for selections and checks the declared ones"
        ),
        reason=(
            f"{MOTO} holds Backup vaults, vault locks and plans but has no backup "
            "selections (ListBackupSelections answers NotImplemented), backup jobs or "
            "restore jobs"
        ),
        covered_by=(
            "backup-vault-locked-and-plan-covers-data-stores",
            "backup.plan_coverage",
            "tests/infra/verify/test_verify_collect.py::"
            "test_the_emulator_is_not_asked_for_selections_it_does_not_have",
            "tests/infra/verify/test_verify_live.py::"
            "test_verify_on_the_emulator_asks_moto_for_nothing_it_lacks",
            "tests/app/records/test_restore_drill.py (backs up and restores every table "
            "and both buckets with the DynamoDB backups and S3 versions AWS Backup uses "
            "underneath)",
            "tests/app/messaging/test_messaging_restore_drill.py (the messaging media "
            "bucket with S3 versions; the homeserver database with SQLite's online backup "
            "API, the emulator's stand-in for an RDS snapshot)",
        ),
    )


def backup_plan_never_runs(resource: str) -> Gap:
    return Gap(
        resource=resource,
        type=BACKUP_PLAN,
        property="rules",
        not_enforced=(
            "the plan and its rules are stored (GetBackupPlan returns them) but the "
            "schedule never fires and no lifecycle deletes a recovery point; moto cannot "
            "update a plan, so a redeploy keeps the rules the plan was created with; and "
            "moto keeps a deleted plan's name taken (AWS frees it), so a redeploy after "
            "a destroy on the same server takes the deleted plan's record again"
        ),
        reason=f"{MOTO} runs no backup jobs",
        covered_by=(
            "backup-vault-locked-and-plan-covers-data-stores",
            "tests/app/records/test_restore_drill.py",
            "tests/app/messaging/test_messaging_restore_drill.py",
        ),
    )


ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"


def managed_policy_unknown(resource: str, policy_arn: str, emulator: str = MOTO) -> Gap:
    return Gap(
        resource=resource,
        type=ROLE_POLICY_ATTACHMENT,
        property="policyArn",
        not_enforced=(
            f"the AWS-managed policy {policy_arn} is not attached (the emulator does not "
            "know it); the declared attachment is kept in the deployment record"
        ),
        reason=f"{emulator} loads AWS-managed IAM policies only when started with them",
        covered_by=(
            "iam-policy-grants-no-wildcards-on-data-stores",
            "backup-vault-locked-and-plan-covers-data-stores",
        ),
    )
