"""The pack and verify give one answer for one document, for every shared predicate.

Policy documents are generated around a compliant statement (each part kept or swapped
for a boundary case: another effect, principal, action or resource pattern, condition),
then handed to each side the way it meets them: to the pack as a resource's declared
inputs (a JSON string or a mapping), to verify as the boto3 reply (``GetBucketPolicy``'s
string, a role's documents, the function policy Lambda makes of a permission). The
answer must be the same. Settings shared by both (key rotation, public access blocks,
MFA, the API's TLS policy, log retention) are generated as declared inputs and as the
replies that would read them back.

Verify checks more than the pack in two places, and there only one way round: a role's
resources must also lie within the stack, and a function's callers in the account.
Where the pack fails a document, verify's check fails it too.

The cases the two copies of these controls used to disagree on are pinned as examples.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from infra.controls.result import Status
from infra.policies import rules as pack
from infra.verify import rules as verify

ACCOUNT = "111122223333"
BUCKET = "hub-p1-shards-111122223333"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
TABLE_ARN = f"arn:aws:dynamodb:ap-east-1:{ACCOUNT}:table/hub-p1-records"
KEY_ARN = f"arn:aws:kms:ap-east-1:{ACCOUNT}:key/1111-aaaa"


def _document(statements: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    body = st.lists(statements, max_size=3).map(lambda s: {"Version": "2012-10-17", "Statement": s})
    return st.one_of(body, body.map(json.dumps))


def _statement(**parts: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A statement with each of ``parts``, mostly present (a missing part is a case too)."""
    return st.fixed_dictionaries({k: st.one_of(v, v, v, st.none()) for k, v in parts.items()}).map(
        lambda s: {k: v for k, v in s.items() if v is not None}
    )


def _status(result: Any) -> Status:
    assert result.status in (Status.PASS, Status.FAIL), result
    return Status(result.status)


# --- S3: TLS-only bucket policies ---------------------------------------------------------

DENY_HTTP = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
FOUR_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteBucket"]
# Whole action and resource choices, near the compliant one as often as not: a
# disagreement hides in the boundary cases, not in random strings.
S3_ACTIONS = [
    "s3:*",
    "S3:*",
    "*",
    "s*",
    ["*:*"],
    "s3:?*",
    "s3:Get*",
    ["s3:*Object", "s3:ListBucket"],
    FOUR_ACTIONS,
    [*FOUR_ACTIONS, "s3:GetObjectAcl"],
    "s3:GetObject",
    "kms:*",
]
S3_RESOURCES = [
    [BUCKET_ARN, f"{BUCKET_ARN}/*"],
    [BUCKET_ARN, f"{BUCKET_ARN}/a*"],
    [BUCKET_ARN, f"{BUCKET_ARN}/records/*"],
    f"{BUCKET_ARN}*",
    "arn:aws:s3:::hub-p1-*",
    "*",
    BUCKET_ARN,
    f"{BUCKET_ARN}/*",
    ["arn:aws:s3:::another-bucket", "arn:aws:s3:::another-bucket/*"],
    [f"{BUCKET_ARN}/*", "arn:aws:s3:::another-bucket"],
]
TLS_CONDITIONS = [
    {"Bool": {"aws:SecureTransport": "false"}},
    {"Bool": {"aws:SecureTransport": False}},
    {"Bool": {"aws:securetransport": "false"}},
    {"Bool": {"aws:SecureTransport": ["false"]}},
    {"Bool": {"aws:SecureTransport": "true"}},
    {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
    {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
]
ABSENT = object()  # a statement without that part


def _near(canonical: dict[str, Any], variants: dict[str, list[Any]]) -> st.SearchStrategy[Any]:
    """Statements around ``canonical``: each part kept, or swapped for one of its variants
    (the boundary cases are where two copies of a control drift apart)."""
    parts = {
        key: st.one_of(st.just(canonical[key]), st.sampled_from(variants[key])) for key in canonical
    }
    return st.fixed_dictionaries(parts).map(
        lambda s: {k: v for k, v in s.items() if v is not ABSENT}
    )


bucket_statements = _near(
    DENY_HTTP,
    {
        "Sid": [ABSENT, "Other"],
        "Effect": ["Allow", ABSENT],
        "Principal": [{"AWS": "*"}, {"AWS": ["*"]}, {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}],
        "Action": [a for a in S3_ACTIONS if a != "s3:*"] + [ABSENT],
        "Resource": [*S3_RESOURCES[1:], ABSENT],
        "Condition": [*TLS_CONDITIONS[1:], ABSENT],
    },
)

# Documents the two former copies answered differently, and the one answer now given.
DISAGREED_ON: list[tuple[dict[str, Any], Status]] = [
    # the pack matched "s3:*" literally; verify sampled four actions
    ({"Statement": [{**DENY_HTTP, "Action": "s*"}]}, Status.PASS),
    ({"Statement": [{**DENY_HTTP, "Action": "*:*"}]}, Status.PASS),
    ({"Statement": [{**DENY_HTTP, "Action": FOUR_ACTIONS}]}, Status.FAIL),
    # the pack matched the condition key's case; verify did not
    (
        {"Statement": [{**DENY_HTTP, "Condition": {"Bool": {"aws:securetransport": "false"}}}]},
        Status.PASS,
    ),
    # the pack accepted any bucket's ARN; verify wanted this bucket's
    (
        {"Statement": [{**DENY_HTTP, "Resource": ["arn:aws:s3:::other", "arn:aws:s3:::other/*"]}]},
        Status.FAIL,
    ),
    # verify sampled one object ("/any"); the pack wanted a "/*" resource
    ({"Statement": [{**DENY_HTTP, "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/a*"]}]}, Status.FAIL),
]


def _bucket_policy_answers(document: Any) -> tuple[Status, Status, Status]:
    declared = {"bucket": BUCKET, "policy": document}
    resource_rule = pack.bucket_policy_denies_insecure_transport(
        pack.BUCKET_POLICY, declared, "storage-shards-policy"
    )
    [stack_rule] = pack.every_bucket_denies_insecure_transport(
        [
            pack.StackResource(pack.BUCKET, "storage-shards", {"bucket": BUCKET}),
            pack.StackResource(pack.BUCKET_POLICY, "storage-shards-policy", declared),
        ]
    )
    live = document if isinstance(document, str) else json.dumps(document)
    check = verify.bucket_denies_insecure_transport(BUCKET, BUCKET_ARN, live)
    return _status(resource_rule), _status(stack_rule), _status(check)


@settings(max_examples=300)
@given(_document(bucket_statements))
@example({"Statement": [DENY_HTTP]})
@example(DISAGREED_ON[0][0])
@example(DISAGREED_ON[1][0])
@example(DISAGREED_ON[2][0])
@example(DISAGREED_ON[3][0])
@example(DISAGREED_ON[4][0])
@example(DISAGREED_ON[5][0])
def test_tls_only_bucket_policy(document: Any) -> None:
    resource_rule, stack_rule, check = _bucket_policy_answers(document)
    assert resource_rule == stack_rule == check


def test_the_disagreements_are_settled() -> None:
    for document, answer in DISAGREED_ON:
        assert _bucket_policy_answers(document) == (answer, answer, answer), document


# --- IAM: no wildcard grants on data stores -----------------------------------------------

IAM_ACTIONS = [
    "s3:GetObject",
    "s3:*",
    "S3:GetObject*",
    "dynamodb:GetItem",
    "dynamodb:?etItem",
    "kms:Decrypt",
    "kms:GenerateDataKey*",
    "*",
    "*:GetObject",
    "s?:GetObject",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "iam:*",
    "sns:Publish",
]
STACK_ARNS = [f"{BUCKET_ARN}/*", BUCKET_ARN, TABLE_ARN, KEY_ARN]
IAM_RESOURCES = [*STACK_ARNS, "*", "arn:aws:s3:::another-bucket/*"]
SCOPED = {
    "Sid": "Shards",
    "Effect": "Allow",
    "Action": ["s3:GetObject", "dynamodb:GetItem"],
    "Resource": [f"{BUCKET_ARN}/*", TABLE_ARN],
    "NotAction": ABSENT,
    "NotResource": ABSENT,
}
iam_statements = _near(
    SCOPED,
    {
        "Sid": [ABSENT, "Tracing"],
        "Effect": ["Deny", ABSENT],
        "Action": [*IAM_ACTIONS, IAM_ACTIONS[:3], IAM_ACTIONS[7:10], ["*:GetObject"], ABSENT],
        "Resource": [*IAM_RESOURCES, ABSENT],
        "NotAction": ["iam:*", ["s3:DeleteObject"]],
        "NotResource": [BUCKET_ARN, ["*"]],
    },
)


@settings(max_examples=500)
@given(_document(iam_statements), st.sampled_from(["rolePolicy", "roleInline"]))
@example(
    {"Statement": [{"Effect": "Allow", "Action": "*:GetObject", "Resource": BUCKET_ARN}]},
    "rolePolicy",
)
@example(
    {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": BUCKET_ARN}]},
    "roleInline",
)
def test_identity_policy_wildcards(document: Any, declared_as: str) -> None:
    if declared_as == "rolePolicy":
        declared = pack.iam_policy_grants_no_wildcards_on_data_stores(
            "aws:iam/rolePolicy:RolePolicy", {"role": "r", "policy": document}, "role-policy"
        )
    else:
        declared = pack.iam_policy_grants_no_wildcards_on_data_stores(
            "aws:iam/role:Role", {"inlinePolicies": [{"name": "data", "policy": document}]}, "r"
        )
    live = {"data": document if isinstance(document, dict) else json.loads(document)}
    shared = verify.role_grants_no_data_store_wildcards("svc", live)
    check = verify.role_least_privilege("svc", live, stack_arns=STACK_ARNS)
    assert _status(declared) == _status(shared)
    if declared.failed:
        assert check.failed


# --- Lambda: who may invoke a function ----------------------------------------------------

PRINCIPALS = [
    "*",
    "apigateway.amazonaws.com",
    "cognito-idp.amazonaws.com",
    ACCOUNT,
    f"arn:aws:iam::{ACCOUNT}:root",
    "999999999999",
]
permissions = st.fixed_dictionaries(
    {"action": st.just("lambda:InvokeFunction"), "principal": st.sampled_from(PRINCIPALS)},
    optional={
        "sourceArn": st.just(f"arn:aws:execute-api:ap-east-1:{ACCOUNT}:abc/*/*"),
        "sourceAccount": st.just(ACCOUNT),
        "functionUrlAuthType": st.sampled_from(["NONE", "AWS_IAM"]),
    },
)


def _function_policy(permission: dict[str, Any]) -> str:
    """What Lambda's GetPolicy returns after AddPermission (written from AWS's documented
    output, not from the pack's adapter): a service, an account's root, or everyone."""
    principal = permission["principal"]
    if principal == "*":
        statement_principal: Any = "*"
    elif principal.endswith(".amazonaws.com"):
        statement_principal = {"Service": principal}
    elif principal.isdigit():
        statement_principal = {"AWS": f"arn:aws:iam::{principal}:root"}
    else:
        statement_principal = {"AWS": principal}
    condition: dict[str, dict[str, str]] = {}
    if "sourceArn" in permission:
        condition.setdefault("ArnLike", {})["AWS:SourceArn"] = permission["sourceArn"]
    if "sourceAccount" in permission:
        condition.setdefault("StringEquals", {})["AWS:SourceAccount"] = permission["sourceAccount"]
    if "functionUrlAuthType" in permission:
        condition.setdefault("StringEquals", {})["lambda:FunctionUrlAuthType"] = permission[
            "functionUrlAuthType"
        ]
    statement = {
        "Sid": "invoke",
        "Effect": "Allow",
        "Principal": statement_principal,
        "Action": permission["action"],
        "Resource": f"arn:aws:lambda:ap-east-1:{ACCOUNT}:function:hub-p1-api",
    }
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Id": "default", "Statement": [statement]})


@settings(max_examples=200)
@given(permissions)
@example({"action": "lambda:InvokeFunction", "principal": "*", "sourceArn": "arn:x"})
@example(
    {
        "action": "lambda:InvokeFunction",
        "principal": "apigateway.amazonaws.com",
        "sourceAccount": ACCOUNT,
    }
)
def test_function_invocation(permission: dict[str, Any]) -> None:
    declared = pack.lambda_not_publicly_invocable(pack.LAMBDA_PERMISSION, permission, "invoke")
    policy = _function_policy(permission)
    live = verify.function_policy_not_public("hub-p1-api", policy)
    assert _status(declared) == _status(live)
    if declared.failed:
        assert verify.function_policy_not_public("hub-p1-api", policy, account_id=ACCOUNT).failed


# --- settings: the same value declared and read back --------------------------------------

maybe_bool = st.sampled_from([True, False, None])


@given(
    spec=st.sampled_from([None, "SYMMETRIC_DEFAULT", "ECC_NIST_P256", "HMAC_256"]),
    enabled=maybe_bool,
    period=st.sampled_from([None, 90, 365, 366, 730]),
)
def test_key_rotation(spec: str | None, enabled: bool | None, period: int | None) -> None:
    usage = {"ECC_NIST_P256": "SIGN_VERIFY", "HMAC_256": "GENERATE_VERIFY_MAC"}.get(str(spec))
    declared = {"customerMasterKeySpec": spec, "keyUsage": usage, "enableKeyRotation": enabled}
    if period is not None:
        declared["rotationPeriodInDays"] = float(period)
    metadata = {"KeySpec": spec or "SYMMETRIC_DEFAULT", "KeyUsage": usage or "ENCRYPT_DECRYPT"}
    rotation = {"KeyRotationEnabled": bool(enabled)}
    if enabled and period is not None:
        rotation["RotationPeriodInDays"] = period
    pack_result = pack.kms_key_rotation_enabled(pack.KMS_KEY, declared, "keys-records")
    verify_result = verify.key_rotation_enabled("records key", metadata, rotation)
    assert pack_result.status == verify_result.status


@given(st.fixed_dictionaries({flag: maybe_bool for flag in pack.PUBLIC_ACCESS_BLOCK_FLAGS}))
def test_public_access_block(flags: dict[str, bool | None]) -> None:
    declared = {"bucket": BUCKET, **flags}
    live = {pack.PUBLIC_ACCESS_BLOCK_FLAGS[k]: bool(v) for k, v in flags.items()}
    pack_result = pack.bucket_public_access_fully_blocked(
        pack.BUCKET_PUBLIC_ACCESS_BLOCK, declared, "storage-shards-public-access-block"
    )
    assert pack_result.status == verify.bucket_blocks_public_access(BUCKET, live).status


@given(mode=st.sampled_from(["ON", "OPTIONAL", "OFF", None]), totp=maybe_bool, sms=st.booleans())
def test_mfa(mode: str | None, totp: bool | None, sms: bool) -> None:
    declared: dict[str, Any] = {"mfaConfiguration": mode}
    live: dict[str, Any] = {"MfaConfiguration": mode or "OFF"}
    if totp is not None:
        declared["softwareTokenMfaConfiguration"] = {"enabled": totp}
        live["SoftwareTokenMfaConfiguration"] = {"Enabled": totp}
    if sms:
        declared["smsConfiguration"] = {"snsCallerArn": "arn:aws:iam::1:role/sms"}
        live["SmsMfaConfiguration"] = {"SmsConfiguration": {"SnsCallerArn": "arn"}}
    pack_result = pack.cognito_user_pool_requires_mfa(pack.USER_POOL, declared, "pool")
    assert pack_result.status == verify.user_pool_mfa_on("pool", {}, live).status


@given(
    st.sampled_from(
        [
            "SecurityPolicy_TLS13_1_3_2025_09",
            "SecurityPolicy_TLS13_1_3_FIPS_2025_09",
            "SecurityPolicy_TLS13_1_2_2021_06",
            "TLS_1_2",
            "",
            None,
        ]
    )
)
def test_api_tls_policy(policy: str | None) -> None:
    declared = {"securityPolicy": policy, "endpointAccessMode": "STRICT"}
    pack_result = pack.api_enforces_tls13_security_policy(pack.REST_API, declared, "api")
    assert pack_result.status == verify.api_tls13_only("api", policy, source="live").status


@given(days=st.sampled_from([None, 0, 1, 30, 364, 365, 3653]), encrypted=st.booleans())
def test_log_group(days: int | None, encrypted: bool) -> None:
    key = KEY_ARN if encrypted else None
    declared = {"name": "/aws/lambda/hub-p1-api", "kmsKeyId": key}
    live: dict[str, Any] = {"logGroupName": "/aws/lambda/hub-p1-api", "kmsKeyId": key}
    if days is not None:
        declared["retentionInDays"] = float(days)
        live["retentionInDays"] = days
    pack_result = pack.log_group_encrypted_and_retained(pack.LOG_GROUP, declared, "logs")
    verify_result = verify.log_group_encrypted_retained(
        "/aws/lambda/hub-p1-api", live, kms_key_arn=KEY_ARN, min_retention_days=365
    )
    assert pack_result.status == verify_result.status
