"""The properties the emulator declares but cannot make the emulator enforce.

Each gap says what was not enforced, why, and which checks cover the property instead:
policy-pack rule ids (pre-deploy, over the declared inputs) and verify check ids
(``<area>.<check>``, post-deploy, against the live resource or, where the emulator
cannot hold it, the declared document kept in the deployment record). Nothing here
pretends: a gap is recorded whenever the matching resource is deployed.
"""

from __future__ import annotations

from infra.emulator.record import Gap

KEY = "aws:kms/key:Key"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
USER_POOL = "aws:cognito/userPool:UserPool"
IDENTITY_PROVIDER = "aws:cognito/identityProvider:IdentityProvider"
TRAIL = "aws:cloudtrail/trail:Trail"
REST_API = "aws:apigateway/restApi:RestApi"
STAGE = "aws:apigateway/stage:Stage"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
FUNCTION = "aws:lambda/function:Function"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
TOPIC_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"

MOTO = "moto (the emulator)"


def conditional_bucket_policy(resource: str, dropped_sids: list[str]) -> Gap:
    return Gap(
        resource=resource, type=BUCKET_POLICY, property="policy",
        not_enforced=("conditional statements " + ", ".join(dropped_sids) + " were not "
                      "handed to the emulator; the declared document is kept in the "
                      "deployment record (inputs.policy) and the applied one in "
                      "state.appliedPolicy"),
        reason=(f"{MOTO} ignores Condition blocks in bucket policies, so a conditional "
                "Deny (aws:SecureTransport=false, s3:TlsVersion<1.2, missing SSE-KMS header) "
                "would deny every request, and a conditional Allow would apply "
                "unconditionally"),
        covered_by=("bucket_denies_insecure_transport", "buckets.denies_insecure_transport",
                    "buckets.requires_sse_kms_puts"),
    )


def key_policy(resource: str) -> Gap:
    return Gap(
        resource=resource, type=KEY, property="policy",
        not_enforced=("the key policy is stored (GetKeyPolicy returns it) but not evaluated: "
                      "any caller may use the key"),
        reason=f"{MOTO} does not evaluate KMS key policies or encryption-context conditions",
        covered_by=("key_policy_root_admin_only", "keys.policy_root_admin_only"),
    )


def cognito_triggers(resource: str) -> Gap:
    return Gap(
        resource=resource, type=USER_POOL, property="lambdaConfig",
        not_enforced=("the pre sign-up and pre token generation triggers are configured but "
                      "never invoked: sign-up is not checked against the Medical Council "
                      "register and tokens carry no institution/role claims from the trigger"),
        reason=f"{MOTO} does not invoke Cognito Lambda triggers (and cannot run Lambda "
               "code without Docker)",
        covered_by=("user_pool_has_registration_trigger", "cognito.triggers_configured",
                    "tests/app/identity (trigger logic run in-process)"),
    )


def cognito_threat_protection(resource: str) -> Gap:
    return Gap(
        resource=resource, type=USER_POOL, property="userPoolAddOns.advancedSecurityMode",
        not_enforced="threat protection (advanced security) and the Plus tier are stored only",
        reason=f"{MOTO} has no adaptive authentication or compromised-credential checks",
        covered_by=("user_pool_threat_protection_enforced", "cognito.threat_protection"),
    )


def federation(resource: str) -> Gap:
    return Gap(
        resource=resource, type=IDENTITY_PROVIDER, property="providerDetails",
        not_enforced="the institution IdP's metadata is not fetched and federated sign-in "
                     "is not exercised",
        reason=f"{MOTO} stores identity providers without contacting them (and the "
               "emulator never leaves loopback)",
        covered_by=("cognito.federation",),
    )


def trail_delivery(resource: str) -> Gap:
    return Gap(
        resource=resource, type=TRAIL, property="s3BucketName/cloudWatchLogsGroupArn",
        not_enforced=("no log files, digest files or CloudWatch Logs events are delivered; "
                      "log-file validation and KMS encryption of logs are configured only"),
        reason=f"{MOTO} records trail configuration and logging status but delivers nothing",
        covered_by=("trail_is_multi_region_with_validation", "trail.logging",
                    "trail.validation", "trail.kms", "trail.data_events"),
    )


def api_tls_policy(resource: str, stored: bool) -> Gap:
    how = ("stored but not enforced" if stored
           else "not stored (GetRestApi does not return it)")
    return Gap(
        resource=resource, type=REST_API, property="securityPolicy/endpointAccessMode",
        not_enforced=f"the TLS 1.3 security policy and STRICT endpoint access mode are {how}; "
                     "the emulator serves plain HTTP on loopback",
        reason=f"{MOTO} has no TLS termination for REST APIs",
        covered_by=("api_uses_tls13_security_policy", "api.tls_policy"),
    )


def api_authorizer(resource: str) -> Gap:
    return Gap(
        resource=resource, type=STAGE, property="methods' authorization",
        not_enforced=("Cognito authorizers and throttling are configured but the emulated "
                      "API is not invoked end to end (its Lambda cannot run)"),
        reason=f"{MOTO} cannot execute the Lambda integration without Docker",
        covered_by=("api_methods_require_authorizer", "api.authorizer_on_methods",
                    "api.throttling"),
    )


def waf(resource: str) -> Gap:
    return Gap(
        resource=resource, type=WEB_ACL, property="rules",
        not_enforced="the rate-based rule and AWS managed rule groups are stored and "
                     "associated with the stage but no request is inspected",
        reason=f"{MOTO} does not evaluate WAF rules",
        covered_by=("api_has_waf_when_enabled", "api.waf_attached"),
    )


def lambda_execution(resource: str) -> Gap:
    return Gap(
        resource=resource, type=FUNCTION, property="code",
        not_enforced=("the function is created from a zip of app/ source (without its "
                      "dependencies) and never executed; reserved concurrency, tracing and "
                      "the JSON log configuration are stored only"),
        reason=f"{MOTO} runs Lambda code only through Docker, which this platform does "
               "not use",
        covered_by=("lambda.role_least_privilege", "lambda.no_public_policy",
                    "tests/app (the service runs in-process)"),
    )


def topic_policy(resource: str) -> Gap:
    return Gap(
        resource=resource, type=TOPIC_POLICY, property="policy",
        not_enforced="the topic policy is stored but not evaluated on publish",
        reason=f"{MOTO} does not evaluate SNS topic policies",
        covered_by=("topic_denies_insecure_transport", "monitoring.topic_policy"),
    )


def alarm_delivery(resource: str) -> Gap:
    return Gap(
        resource=resource, type=TOPIC_SUBSCRIPTION, property="endpoint",
        not_enforced="no email is sent; the subscription stays pending confirmation",
        reason=f"{MOTO} does not deliver email notifications",
        covered_by=("monitoring.alarm_subscription",),
    )
