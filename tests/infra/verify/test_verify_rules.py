"""Each post-deploy rule on plain data: a compliant case and the non-compliant ones."""

from __future__ import annotations

import json

import pytest

from infra.controls import predicates
from infra.verify import rules

KEY = "arn:aws:kms:ap-east-1:123456789012:key/1111-aaaa"
OTHER_KEY = "arn:aws:kms:ap-east-1:123456789012:key/2222-bbbb"
BUCKET = "hub-p1-shards-123456789012"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
TABLE_ARN = "arn:aws:dynamodb:ap-east-1:123456789012:table/hub-p1-records"
POOL_ARN = "arn:aws:cognito-idp:ap-east-1:123456789012:userpool/ap-east-1_abc"


# ------------------------------------------------------------------ keys

SYMMETRIC = {
    "KeyState": "Enabled",
    "Enabled": True,
    "KeySpec": "SYMMETRIC_DEFAULT",
    "KeyUsage": "ENCRYPT_DECRYPT",
}


def test_key_enabled() -> None:
    assert rules.key_enabled("k", SYMMETRIC).status == "pass"
    disabled = {**SYMMETRIC, "KeyState": "Disabled", "Enabled": False}
    assert rules.key_enabled("k", disabled).status == "fail"
    pending = {**SYMMETRIC, "KeyState": "PendingDeletion", "Enabled": False}
    assert "PendingDeletion" in rules.key_enabled("k", pending).message


def test_key_rotation() -> None:
    on = {"KeyRotationEnabled": True, "RotationPeriodInDays": 365}
    assert rules.key_rotation_enabled("k", SYMMETRIC, on).status == "pass"
    assert (
        rules.key_rotation_enabled("k", SYMMETRIC, {"KeyRotationEnabled": False}).status == "fail"
    )
    assert rules.key_rotation_enabled("k", SYMMETRIC, None).status == "fail"
    slow = {"KeyRotationEnabled": True, "RotationPeriodInDays": 2560}
    assert rules.key_rotation_enabled("k", SYMMETRIC, slow).status == "fail"


def test_key_rotation_not_applicable_to_signing_keys() -> None:
    signing = {**SYMMETRIC, "KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}
    outcome = rules.key_rotation_enabled("k", signing, None)
    assert outcome.status == "not_applicable"
    assert "ECC_NIST_P256" in outcome.message


def test_key_spec_and_usage() -> None:
    assert (
        rules.key_spec_and_usage(
            "k", SYMMETRIC, spec="SYMMETRIC_DEFAULT", usage="ENCRYPT_DECRYPT"
        ).status
        == "pass"
    )
    assert (
        rules.key_spec_and_usage("k", SYMMETRIC, spec="ECC_NIST_P256", usage="SIGN_VERIFY").status
        == "fail"
    )
    hmac = {**SYMMETRIC, "KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}
    assert (
        rules.key_spec_and_usage(
            "k", hmac, spec="SYMMETRIC_DEFAULT", usage="ENCRYPT_DECRYPT"
        ).status
        == "fail"
    )


# ------------------------------------------------------------------ buckets


def _sse(algorithm: str, key: str | None = None) -> dict[str, object]:
    default: dict[str, object] = {"SSEAlgorithm": algorithm}
    if key:
        default["KMSMasterKeyID"] = key
    return {"Rules": [{"ApplyServerSideEncryptionByDefault": default}]}


def test_bucket_encryption_sse_kms_with_the_right_key() -> None:
    assert (
        rules.bucket_default_encryption("b", _sse("aws:kms", KEY), kms_key_arn=KEY).status == "pass"
    )
    # a bare key id names the same key
    assert (
        rules.bucket_default_encryption("b", _sse("aws:kms", "1111-aaaa"), kms_key_arn=KEY).status
        == "pass"
    )
    assert (
        rules.bucket_default_encryption("b", _sse("aws:kms", OTHER_KEY), kms_key_arn=KEY).status
        == "fail"
    )
    assert rules.bucket_default_encryption("b", _sse("AES256"), kms_key_arn=KEY).status == "fail"
    assert rules.bucket_default_encryption("b", None, kms_key_arn=KEY).status == "fail"


def test_access_log_bucket_is_sse_s3_by_design() -> None:
    outcome = rules.bucket_default_encryption(
        "logs", _sse("AES256"), kms_key_arn=None, sse_s3_reason="logging cannot write SSE-KMS"
    )
    assert outcome.status == "pass"
    assert "logging cannot write SSE-KMS" in outcome.message
    assert (
        rules.bucket_default_encryption("logs", _sse("aws:kms", KEY), kms_key_arn=None).status
        == "fail"
    )


def test_bucket_versioning() -> None:
    assert rules.bucket_versioning_enabled("b", {"Status": "Enabled"}).status == "pass"
    assert rules.bucket_versioning_enabled("b", {"Status": "Suspended"}).status == "fail"
    assert rules.bucket_versioning_enabled("b", {}).status == "fail"


ALL_BLOCKED = dict.fromkeys(predicates.PUBLIC_ACCESS_BLOCK_FLAGS, True)


def test_public_access_block_all_four() -> None:
    assert rules.bucket_blocks_public_access("b", ALL_BLOCKED).status == "pass"
    assert rules.bucket_blocks_public_access("b", None).status == "fail"


@pytest.mark.parametrize("flag", predicates.PUBLIC_ACCESS_BLOCK_FLAGS)
def test_public_access_block_each_flag_matters(flag: str) -> None:
    outcome = rules.bucket_blocks_public_access("b", {**ALL_BLOCKED, flag: False})
    assert outcome.status == "fail"
    assert flag in outcome.message


def test_ownership_enforced() -> None:
    enforced = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert rules.bucket_owner_enforced("b", enforced).status == "pass"
    preferred = {"Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]}
    assert rules.bucket_owner_enforced("b", preferred).status == "fail"
    assert rules.bucket_owner_enforced("b", None).status == "fail"


def _deny_http(**overrides: object) -> dict[str, object]:
    statement: dict[str, object] = {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    statement.update(overrides)
    return {"Version": "2012-10-17", "Statement": [statement]}


def test_bucket_policy_denies_insecure_transport() -> None:
    outcome = rules.bucket_denies_insecure_transport("b", BUCKET_ARN, json.dumps(_deny_http()))
    assert outcome.status == "pass"
    assert "DenyInsecureTransport" in outcome.message
    # the same statement as a dict, with a boolean and {"AWS": "*"}
    document = _deny_http(
        Principal={"AWS": "*"}, Condition={"Bool": {"aws:SecureTransport": False}}
    )
    assert rules.bucket_denies_insecure_transport("b", BUCKET_ARN, document).status == "pass"
    # every S3 action, though not spelled s3:*
    for actions in ("*", "s*", ["*:*"]):
        every = _deny_http(Action=actions)
        assert rules.bucket_denies_insecure_transport("b", BUCKET_ARN, every).status == "pass"
    assert rules.bucket_denies_insecure_transport("b", BUCKET_ARN, "not json").status == "fail"


@pytest.mark.parametrize(
    "overrides",
    [
        {"Effect": "Allow"},
        {"Principal": {"AWS": "arn:aws:iam::123456789012:root"}},
        {"Action": "s3:GetObject"},
        {"Resource": BUCKET_ARN},  # objects not covered
        {"Resource": f"{BUCKET_ARN}/*"},  # the bucket itself not covered
        {"Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        {"Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}}},  # TLS version only
        # four actions named are not every action
        {"Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteBucket"]},
        {"Resource": [BUCKET_ARN, f"{BUCKET_ARN}/records/*"]},  # some objects only
    ],
)
def test_bucket_policy_without_a_tls_deny_fails(overrides: dict[str, object]) -> None:
    document = _deny_http(**overrides)
    assert rules.bucket_denies_insecure_transport("b", BUCKET_ARN, document).status == "fail"


def test_no_bucket_policy_fails() -> None:
    assert rules.bucket_denies_insecure_transport("b", BUCKET_ARN, None).status == "fail"


def test_access_logging() -> None:
    logging = {"LoggingEnabled": {"TargetBucket": "logs", "TargetPrefix": "shards/"}}
    assert rules.bucket_logs_to("b", logging, target_bucket="logs").status == "pass"
    assert rules.bucket_logs_to("b", logging, target_bucket="elsewhere").status == "fail"
    assert rules.bucket_logs_to("b", {}, target_bucket="logs").status == "fail"


def _lock(mode: str = "COMPLIANCE", years: int = 7) -> dict[str, object]:
    return {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": mode, "Years": years, "Days": 0}},
    }


def test_object_lock_compliance_with_configured_years() -> None:
    assert rules.bucket_object_lock_compliance("b", _lock(), years=7).status == "pass"
    assert rules.bucket_object_lock_compliance("b", _lock("GOVERNANCE"), years=7).status == "fail"
    assert rules.bucket_object_lock_compliance("b", _lock(years=1), years=7).status == "fail"
    assert rules.bucket_object_lock_compliance("b", None, years=7).status == "fail"
    no_default = {"ObjectLockEnabled": "Enabled"}
    assert rules.bucket_object_lock_compliance("b", no_default, years=7).status == "fail"


# ------------------------------------------------------------------ CloudTrail


def test_trail_logging() -> None:
    assert rules.trail_logging("t", {"IsLogging": True}).status == "pass"
    stopped = rules.trail_logging("t", {"IsLogging": False, "StopLoggingTime": "2026-01-01"})
    assert stopped.status == "fail"
    assert "2026-01-01" in stopped.message


def test_trail_multi_region_validation_and_kms() -> None:
    good = {
        "IsMultiRegionTrail": True,
        "IncludeGlobalServiceEvents": True,
        "LogFileValidationEnabled": True,
        "KmsKeyId": KEY,
    }
    assert rules.trail_multi_region("t", good).status == "pass"
    assert rules.trail_multi_region("t", {**good, "IsMultiRegionTrail": False}).status == "fail"
    assert (
        rules.trail_multi_region("t", {**good, "IncludeGlobalServiceEvents": False}).status
        == "fail"
    )
    assert rules.trail_log_file_validation("t", good).status == "pass"
    assert (
        rules.trail_log_file_validation("t", {**good, "LogFileValidationEnabled": False}).status
        == "fail"
    )
    assert rules.trail_kms_encrypted("t", good, kms_key_arn=KEY).status == "pass"
    assert (
        rules.trail_kms_encrypted("t", {**good, "KmsKeyId": None}, kms_key_arn=KEY).status == "fail"
    )
    assert rules.trail_kms_encrypted("t", good, kms_key_arn=OTHER_KEY).status == "fail"


def _selector(
    resource_type: str, arn_ops: dict[str, list[str]] | None, **extra: list[str]
) -> dict[str, object]:
    fields: list[dict[str, object]] = [
        {"Field": "eventCategory", "Equals": ["Data"]},
        {"Field": "resources.type", "Equals": [resource_type]},
    ]
    if arn_ops is not None:
        fields.append({"Field": "resources.ARN", **arn_ops})
    fields += [{"Field": f, "Equals": v} for f, v in extra.items()]
    return {"AdvancedEventSelectors": [{"Name": "s", "FieldSelectors": fields}]}


@pytest.mark.parametrize(
    ("resource_type", "arn", "selectors"),
    [
        (
            "AWS::S3::Object",
            BUCKET_ARN,
            _selector("AWS::S3::Object", {"StartsWith": [f"{BUCKET_ARN}/"]}),
        ),
        ("AWS::S3::Object", BUCKET_ARN, _selector("AWS::S3::Object", None)),  # every bucket
        (
            "AWS::DynamoDB::Table",
            TABLE_ARN,
            _selector("AWS::DynamoDB::Table", {"Equals": [TABLE_ARN]}),
        ),
        (
            "AWS::S3::Object",
            BUCKET_ARN,
            {
                "EventSelectors": [
                    {
                        "ReadWriteType": "All",
                        "DataResources": [
                            {"Type": "AWS::S3::Object", "Values": [f"{BUCKET_ARN}/"]}
                        ],
                    }
                ]
            },
        ),
    ],
)
def test_data_event_selectors_cover(
    resource_type: str, arn: str, selectors: dict[str, object]
) -> None:
    outcome = rules.trail_logs_data_events(
        "t", selectors, resource_type=resource_type, resource_arn=arn
    )
    assert outcome.status == "pass"


@pytest.mark.parametrize(
    ("resource_type", "arn", "selectors"),
    [
        ("AWS::S3::Object", BUCKET_ARN, {"AdvancedEventSelectors": []}),
        (
            "AWS::S3::Object",
            BUCKET_ARN,
            _selector("AWS::S3::Object", {"StartsWith": ["arn:aws:s3:::other-bucket/"]}),
        ),
        (
            "AWS::S3::Object",
            BUCKET_ARN,  # only one prefix of the bucket
            _selector("AWS::S3::Object", {"StartsWith": [f"{BUCKET_ARN}/manifests/"]}),
        ),
        (
            "AWS::S3::Object",
            BUCKET_ARN,  # writes only
            _selector("AWS::S3::Object", {"StartsWith": [f"{BUCKET_ARN}/"]}, readOnly=["false"]),
        ),
        (
            "AWS::DynamoDB::Table",
            TABLE_ARN,
            _selector("AWS::DynamoDB::Table", {"Equals": [TABLE_ARN + "-other"]}),
        ),
        ("AWS::DynamoDB::Table", TABLE_ARN, _selector("AWS::S3::Object", {"Equals": [TABLE_ARN]})),
        (
            "AWS::DynamoDB::Table",
            TABLE_ARN,
            _selector("AWS::DynamoDB::Table", {"NotEquals": [TABLE_ARN]}),
        ),
        (
            "AWS::S3::Object",
            BUCKET_ARN,
            {
                "EventSelectors": [
                    {
                        "ReadWriteType": "WriteOnly",
                        "DataResources": [
                            {"Type": "AWS::S3::Object", "Values": [f"{BUCKET_ARN}/"]}
                        ],
                    }
                ]
            },
        ),
    ],
)
def test_data_event_selectors_missing_the_store_fail(
    resource_type: str, arn: str, selectors: dict[str, object]
) -> None:
    outcome = rules.trail_logs_data_events(
        "t", selectors, resource_type=resource_type, resource_arn=arn
    )
    assert outcome.status == "fail"


# ------------------------------------------------------------------ DynamoDB


def test_table_customer_key() -> None:
    table = {"SSEDescription": {"Status": "ENABLED", "SSEType": "KMS", "KMSMasterKeyArn": KEY}}
    assert rules.table_encrypted_with_customer_key("t", table, kms_key_arn=KEY).status == "pass"
    assert (
        rules.table_encrypted_with_customer_key("t", table, kms_key_arn=OTHER_KEY).status == "fail"
    )
    owned = rules.table_encrypted_with_customer_key("t", {}, kms_key_arn=KEY)
    assert owned.status == "fail"
    assert "AWS owned" in owned.message


def test_table_pitr_and_deletion_protection() -> None:
    on = {"PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "ENABLED"}}
    off = {"PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}}
    assert rules.table_pitr_enabled("t", on).status == "pass"
    assert rules.table_pitr_enabled("t", off).status == "fail"
    assert rules.table_deletion_protected("t", {"DeletionProtectionEnabled": True}).status == "pass"
    assert (
        rules.table_deletion_protected("t", {"DeletionProtectionEnabled": False}).status == "fail"
    )
    assert rules.table_deletion_protected("t", {}).status == "fail"


# ------------------------------------------------------------------ Cognito


def test_mfa_on() -> None:
    on = {"MfaConfiguration": "ON", "SoftwareTokenMfaConfiguration": {"Enabled": True}}
    assert rules.user_pool_mfa_on("p", {"MfaConfiguration": "ON"}, on).status == "pass"
    assert rules.user_pool_mfa_on("p", {}, {"MfaConfiguration": "OFF"}).status == "fail"
    assert rules.user_pool_mfa_on("p", {}, {"MfaConfiguration": "OPTIONAL"}).status == "fail"
    optional = {**on, "MfaConfiguration": "OPTIONAL"}  # a factor, but not required
    assert rules.user_pool_mfa_on("p", {}, optional).status == "fail"
    # the dedicated MFA API decides; a stale copy is shown, not trusted
    # required, but no factor reported enabled: nobody could complete MFA
    assert rules.user_pool_mfa_on("p", {}, {"MfaConfiguration": "ON"}).status == "fail"
    sms = {"MfaConfiguration": "ON", "SmsMfaConfiguration": {"SmsConfiguration": {"a": 1}}}
    assert rules.user_pool_mfa_on("p", {}, sms).status == "pass"
    stale = rules.user_pool_mfa_on("p", {"MfaConfiguration": "ON"}, {"MfaConfiguration": "OFF"})
    assert stale.status == "fail"
    assert "DescribeUserPool" in stale.message


GOOD_PASSWORDS = {
    "Policies": {
        "PasswordPolicy": {
            "MinimumLength": 14,
            "RequireUppercase": True,
            "RequireLowercase": True,
            "RequireNumbers": True,
            "RequireSymbols": True,
            "TemporaryPasswordValidityDays": 1,
        }
    }
}


def test_password_policy() -> None:
    assert (
        rules.user_pool_password_policy(
            "p", GOOD_PASSWORDS, min_length=14, max_temporary_days=1
        ).status
        == "pass"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"MinimumLength": 8},
        {"RequireSymbols": False},
        {"RequireUppercase": False},
        {"TemporaryPasswordValidityDays": 7},
    ],
)
def test_weak_password_policy_fails(change: dict[str, object]) -> None:
    policy = {**GOOD_PASSWORDS["Policies"]["PasswordPolicy"], **change}
    outcome = rules.user_pool_password_policy(
        "p", {"Policies": {"PasswordPolicy": policy}}, min_length=14, max_temporary_days=1
    )
    assert outcome.status == "fail"


REQUIRED_ATTRIBUTES = {"mchk_reg_no": False, "institution_id": True}


def test_custom_attributes() -> None:
    schema = {
        "SchemaAttributes": [
            {"Name": "email"},
            {"Name": "custom:mchk_reg_no", "Mutable": False},
            {"Name": "custom:institution_id", "Mutable": True},
        ]
    }
    assert (
        rules.user_pool_custom_attributes("p", schema, required=REQUIRED_ATTRIBUTES).status
        == "pass"
    )
    missing = {"SchemaAttributes": [{"Name": "custom:mchk_reg_no", "Mutable": False}]}
    assert (
        rules.user_pool_custom_attributes("p", missing, required=REQUIRED_ATTRIBUTES).status
        == "fail"
    )
    mutable = {
        "SchemaAttributes": [
            {"Name": "custom:mchk_reg_no", "Mutable": True},
            {"Name": "custom:institution_id", "Mutable": True},
        ]
    }
    outcome = rules.user_pool_custom_attributes("p", mutable, required=REQUIRED_ATTRIBUTES)
    assert outcome.status == "fail"
    assert "mutable" in outcome.message


def test_role_groups_exactly() -> None:
    required = ["doctor", "auditor"]
    groups = [{"GroupName": "doctor"}, {"GroupName": "auditor"}]
    assert rules.user_pool_role_groups("p", groups, required=required).status == "pass"
    assert rules.user_pool_role_groups("p", groups[:1], required=required).status == "fail"
    extra = [*groups, {"GroupName": "superuser"}]
    outcome = rules.user_pool_role_groups("p", extra, required=required)
    assert outcome.status == "fail"
    assert "superuser" in outcome.message


def test_federation_per_phase() -> None:
    saml = [{"ProviderName": "VictoriaGeneral", "ProviderType": "SAML"}]
    assert rules.user_pool_federation("p", [], phase=1, expected={}).status == "pass"
    assert rules.user_pool_federation("p", saml, phase=1, expected={}).status == "fail"
    expected = {"VictoriaGeneral": "SAML"}
    assert rules.user_pool_federation("p", saml, phase=2, expected=expected).status == "pass"
    assert rules.user_pool_federation("p", [], phase=2, expected=expected).status == "fail"
    oidc = [{"ProviderName": "VictoriaGeneral", "ProviderType": "OIDC"}]
    assert rules.user_pool_federation("p", oidc, phase=2, expected=expected).status == "fail"
    # a social provider is not an institution's IdP and does not count
    social = [*saml, {"ProviderName": "Google", "ProviderType": "Google"}]
    assert rules.user_pool_federation("p", social, phase=2, expected=expected).status == "pass"


# ------------------------------------------------------------------ API Gateway


def test_api_tls13_only() -> None:
    assert (
        rules.api_tls13_only("a", "SecurityPolicy_TLS13_1_3_2025_09", source="live").status
        == "pass"
    )
    assert rules.api_tls13_only("a", "TLS_1_2", source="live").status == "fail"
    assert (
        rules.api_tls13_only("a", "SecurityPolicy_TLS13_1_2_2021_06", source="live").status
        == "fail"
    )
    assert rules.api_tls13_only("a", None, source="live").status == "fail"
    declared = rules.api_tls13_only(
        "a", "SecurityPolicy_TLS13_1_3_2025_09", source="as declared (emulator gap: x)"
    )
    assert "as declared" in declared.message


AUTHORIZERS = [
    {"id": "auth1", "name": "cognito", "type": "COGNITO_USER_POOLS", "providerARNs": [POOL_ARN]}
]


def test_method_authorizer() -> None:
    method = {
        "authorizationType": "COGNITO_USER_POOLS",
        "authorizerId": "auth1",
        "authorizationScopes": ["openid"],
    }
    assert (
        rules.api_method_requires_authorizer(
            "ANY /", method, AUTHORIZERS, user_pool_arn=POOL_ARN
        ).status
        == "pass"
    )
    for bad in (
        {"authorizationType": "NONE"},
        {"authorizationType": "AWS_IAM"},
        {**method, "authorizerId": "gone"},
    ):
        assert (
            rules.api_method_requires_authorizer(
                "ANY /", bad, AUTHORIZERS, user_pool_arn=POOL_ARN
            ).status
            == "fail"
        )
    foreign = [{**AUTHORIZERS[0], "providerARNs": [POOL_ARN + "-other"]}]
    assert (
        rules.api_method_requires_authorizer(
            "ANY /", method, foreign, user_pool_arn=POOL_ARN
        ).status
        == "fail"
    )


def test_health_method_is_public_by_design() -> None:
    outcome = rules.api_method_requires_authorizer(
        "GET /health",
        {"authorizationType": "NONE"},
        AUTHORIZERS,
        user_pool_arn=POOL_ARN,
        public=True,
    )
    assert outcome.status == "not_applicable"


# ------------------------------------------------------------------ Lambda

STACK_ARNS = [
    BUCKET_ARN,
    TABLE_ARN,
    KEY,
    "arn:aws:logs:ap-east-1:123456789012:log-group:/aws/lambda/hub-p1-api",
]


def _role(*statements: dict[str, object]) -> dict[str, object]:
    return {"inline": {"Version": "2012-10-17", "Statement": list(statements)}}


def test_least_privilege_role() -> None:
    documents = _role(
        {
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:Query"],
            "Resource": [TABLE_ARN, f"{TABLE_ARN}/index/*"],
        },
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET_ARN}/*"},
        {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": KEY},
        {"Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": STACK_ARNS[3] + ":*"},
        {"Effect": "Allow", "Action": ["xray:PutTraceSegments"], "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": "*"},
    )
    assert rules.role_least_privilege("r", documents, stack_arns=STACK_ARNS).status == "pass"


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:*", "Resource": f"{BUCKET_ARN}/*"},
        {"Effect": "Allow", "Action": "dynamodb:Get*", "Resource": TABLE_ARN},
        {"Effect": "Allow", "Action": "kms:*", "Resource": KEY},
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::someone-else/*"},
        {
            "Effect": "Allow",
            "Action": "dynamodb:GetItem",
            "Resource": TABLE_ARN.replace("hub-p1-records", "hub-p2-records"),
        },
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "*:GetObject", "Resource": f"{BUCKET_ARN}/*"},
        {"Effect": "Allow", "Action": "logs:PutLogEvents", "NotResource": BUCKET_ARN},
    ],
)
def test_broad_role_fails(statement: dict[str, object]) -> None:
    assert rules.role_least_privilege("r", _role(statement), stack_arns=STACK_ARNS).status == "fail"


def test_function_policy() -> None:
    bound = {
        "Statement": [
            {
                "Sid": "api",
                "Effect": "Allow",
                "Principal": {"Service": "apigateway.amazonaws.com"},
                "Action": "lambda:InvokeFunction",
                "Condition": {"ArnLike": {"AWS:SourceArn": "arn:x"}},
            }
        ]
    }
    assert rules.function_policy_not_public("f", json.dumps(bound)).status == "pass"
    assert rules.function_policy_not_public("f", None).status == "pass"
    public = {
        "Statement": [
            {"Sid": "pub", "Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunction"}
        ]
    }
    assert rules.function_policy_not_public("f", public).status == "fail"
    everyone = {
        "Statement": [
            {
                "Sid": "pub",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "lambda:InvokeFunction",
            }
        ]
    }
    assert rules.function_policy_not_public("f", everyone).status == "fail"
    unbound_service = {
        "Statement": [
            {
                "Sid": "s",
                "Effect": "Allow",
                "Principal": {"Service": "apigateway.amazonaws.com"},
                "Action": "lambda:InvokeFunction",
            }
        ]
    }
    assert rules.function_policy_not_public("f", unbound_service).status == "fail"
    public_with_source = {
        "Statement": [
            {
                **public["Statement"][0],
                "Condition": {
                    "ArnLike": {"AWS:SourceArn": "arn:aws:execute-api:ap-east-1:1:api/*"}
                },
            }
        ]
    }
    # A permission names its caller: everyone bound to a source ARN is still everyone
    # (the pack refuses the same permission before deployment).
    assert rules.function_policy_not_public("f", public_with_source).status == "fail"


# ------------------------------------------------------------------ log groups


def test_log_group_encrypted_retained() -> None:
    group = {"logGroupName": "g", "kmsKeyId": KEY, "retentionInDays": 365}
    assert (
        rules.log_group_encrypted_retained(
            "g", group, kms_key_arn=KEY, min_retention_days=365
        ).status
        == "pass"
    )
    for bad in (
        {**group, "kmsKeyId": None},
        {**group, "kmsKeyId": OTHER_KEY},
        {**group, "retentionInDays": 30},
        {k: v for k, v in group.items() if k != "retentionInDays"},
    ):
        assert (
            rules.log_group_encrypted_retained(
                "g", bad, kms_key_arn=KEY, min_retention_days=365
            ).status
            == "fail"
        )
    assert (
        rules.log_group_encrypted_retained(
            "g", None, kms_key_arn=KEY, min_retention_days=365
        ).status
        == "fail"
    )


# ------------------------------------------------------------------ key policies

ROOT = "arn:aws:iam::123456789012:root"


def _key_policy(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


ADMIN = {
    "Sid": "KeyAdministrationOnly",
    "Effect": "Allow",
    "Principal": {"AWS": ROOT},
    "Action": ["kms:Create*", "kms:Describe*", "kms:Put*", "kms:Disable*"],
    "Resource": "*",
}


def test_key_policy_root_admin_only() -> None:
    service = {
        "Sid": "Service",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:role/svc"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": "*",
    }
    via_dynamodb = {
        "Sid": "ViaDynamoDB",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": ["kms:Decrypt"],
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": "dynamodb.x"}},
    }
    public_key = {
        "Sid": "ReadPublicKey",
        "Effect": "Allow",
        "Principal": {"AWS": ROOT},
        "Action": ["kms:GetPublicKey", "kms:Verify"],
        "Resource": "*",
    }
    policy = _key_policy(ADMIN, service, via_dynamodb, public_key)
    assert rules.key_policy_root_admin_only("k", policy, account_id="123456789012").status == "pass"


@pytest.mark.parametrize(
    "statement",
    [
        {
            "Sid": "Default",
            "Effect": "Allow",
            "Principal": {"AWS": ROOT},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "RootDecrypts",
            "Effect": "Allow",
            "Principal": {"AWS": "123456789012"},
            "Action": ["kms:Decrypt"],
            "Resource": "*",
        },
        {
            "Sid": "RootSigns",
            "Effect": "Allow",
            "Principal": {"AWS": ROOT},
            "Action": ["kms:Sign"],
            "Resource": "*",
        },
        {
            "Sid": "Everyone",
            "Effect": "Allow",
            "Principal": "*",
            "Action": ["kms:Generate*"],
            "Resource": "*",
        },
    ],
)
def test_key_policy_giving_root_crypto_fails(statement: dict[str, object]) -> None:
    policy = _key_policy(ADMIN, statement)
    outcome = rules.key_policy_root_admin_only("k", policy, account_id="123456789012")
    assert outcome.status == "fail"
    assert str(statement["Sid"]) in outcome.message


def test_missing_key_policy_fails() -> None:
    assert rules.key_policy_root_admin_only("k", None, account_id="1").status == "fail"


def _sse_denies(algorithm: str = "aws:kms", key: str = KEY) -> dict[str, object]:
    objects = f"{BUCKET_ARN}/*"
    return {
        "Statement": [
            {
                "Sid": "NoKms",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": objects,
                "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": algorithm}},
            },
            {
                "Sid": "OtherKey",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": objects,
                "Condition": {
                    "StringNotEqualsIfExists": {
                        "s3:x-amz-server-side-encryption-aws-kms-key-id": key
                    }
                },
            },
        ]
    }


def test_shard_bucket_requires_sse_kms_puts() -> None:
    assert (
        rules.bucket_requires_sse_kms_puts("b", BUCKET_ARN, _sse_denies(), kms_key_arn=KEY).status
        == "pass"
    )
    assert (
        rules.bucket_requires_sse_kms_puts(
            "b", BUCKET_ARN, _sse_denies("AES256"), kms_key_arn=KEY
        ).status
        == "fail"
    )
    assert (
        rules.bucket_requires_sse_kms_puts(
            "b", BUCKET_ARN, _sse_denies(key=OTHER_KEY), kms_key_arn=KEY
        ).status
        == "fail"
    )
    only_first = {"Statement": _sse_denies()["Statement"][:1]}  # type: ignore[index]
    assert (
        rules.bucket_requires_sse_kms_puts("b", BUCKET_ARN, only_first, kms_key_arn=KEY).status
        == "fail"
    )
    assert (
        rules.bucket_requires_sse_kms_puts("b", BUCKET_ARN, None, kms_key_arn=KEY).status == "fail"
    )


# ------------------------------------------------------------------ more Cognito

FUNCTIONS = ["hub-p1-pre-sign-up", "hub-p1-pre-token"]
LAMBDA = "arn:aws:lambda:ap-east-1:123456789012:function:"


def _triggers(sign_up: str | None, token: str | None, version: str = "V2_0") -> dict[str, object]:
    config: dict[str, object] = {}
    if sign_up:
        config["PreSignUp"] = LAMBDA + sign_up
    if token:
        config["PreTokenGenerationConfig"] = {"LambdaArn": LAMBDA + token, "LambdaVersion": version}
    return {"LambdaConfig": config}


def test_triggers_configured() -> None:
    good = _triggers(*FUNCTIONS)
    assert rules.user_pool_triggers_configured("p", good, functions=FUNCTIONS).status == "pass"
    for bad in (
        _triggers(None, FUNCTIONS[1]),
        _triggers(FUNCTIONS[0], None),
        _triggers("someone-elses-fn", FUNCTIONS[1]),
        _triggers(*FUNCTIONS, version="V1_0"),
        {},
    ):
        assert rules.user_pool_triggers_configured("p", bad, functions=FUNCTIONS).status == "fail"


def test_threat_protection() -> None:
    enforced = {"UserPoolAddOns": {"AdvancedSecurityMode": "ENFORCED"}}
    audit = {"UserPoolAddOns": {"AdvancedSecurityMode": "AUDIT"}}
    assert rules.user_pool_threat_protection("p", enforced).status == "pass"
    assert rules.user_pool_threat_protection("p", audit).status == "fail"
    assert rules.user_pool_threat_protection("p", {}).status == "fail"


# ------------------------------------------------------------------ API stages


def _stage(**settings: object) -> dict[str, object]:
    wide = {"throttlingRateLimit": 50.0, "throttlingBurstLimit": 100, "dataTraceEnabled": False}
    wide.update(settings)
    return {"stageName": "v1", "methodSettings": {"*/*": wide}}


def test_stage_throttled_as_configured() -> None:
    assert rules.stage_throttled("s", _stage(), rate_limit=50, burst_limit=100).status == "pass"
    assert (
        rules.stage_throttled(
            "s", _stage(throttlingRateLimit=5000.0), rate_limit=50, burst_limit=100
        ).status
        == "fail"
    )
    assert (
        rules.stage_throttled(
            "s", _stage(throttlingRateLimit=-1.0), rate_limit=50, burst_limit=100
        ).status
        == "fail"
    )
    assert (
        rules.stage_throttled("s", {"methodSettings": {}}, rate_limit=50, burst_limit=100).status
        == "fail"
    )


def test_stage_without_data_trace() -> None:
    assert rules.stage_without_data_trace("s", _stage()).status == "pass"
    traced = {
        "methodSettings": {
            **_stage()["methodSettings"],  # type: ignore[dict-item]
            "records/GET": {"dataTraceEnabled": True},
        }
    }
    outcome = rules.stage_without_data_trace("s", traced)
    assert outcome.status == "fail"
    assert "records/GET" in outcome.message


def test_stage_protected_by_waf() -> None:
    acl = {
        "Name": "waf",
        "Rules": [
            {"Name": "rate", "Statement": {"RateBasedStatement": {"Limit": 2000}}},
            {
                "Name": "common",
                "Statement": {
                    "ManagedRuleGroupStatement": {"Name": "AWSManagedRulesCommonRuleSet"}
                },
            },
        ],
    }
    assert rules.stage_protected_by_waf("s", acl).status == "pass"
    no_rate = {"Name": "waf", "Rules": acl["Rules"][1:]}  # type: ignore[index]
    assert rules.stage_protected_by_waf("s", no_rate).status == "fail"
    assert rules.stage_protected_by_waf("s", None).status == "fail"


def test_function_policy_for_another_account_fails() -> None:
    other = {
        "Statement": [
            {
                "Sid": "x",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                "Action": "lambda:InvokeFunction",
            }
        ]
    }
    own = {
        "Statement": [
            {
                "Sid": "x",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:role/ops"},
                "Action": "lambda:InvokeFunction",
            }
        ]
    }
    assert rules.function_policy_not_public("f", other, account_id="123456789012").status == "fail"
    assert rules.function_policy_not_public("f", own, account_id="123456789012").status == "pass"


def test_action_names_and_condition_keys_ignore_case() -> None:
    document = _deny_http(Action="S3:*", Condition={"Bool": {"AWS:SecureTransport": "false"}})
    assert rules.bucket_denies_insecure_transport("b", BUCKET_ARN, document).status == "pass"
    root = {
        "Sid": "RootDecrypts",
        "Effect": "Allow",
        "Principal": {"AWS": ROOT},
        "Action": ["KMS:decrypt"],
        "Resource": "*",
    }
    assert (
        rules.key_policy_root_admin_only("k", _key_policy(root), account_id="123456789012").status
        == "fail"
    )


def test_management_events() -> None:
    all_events = {
        "AdvancedEventSelectors": [
            {"Name": "m", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}
        ]
    }
    assert rules.trail_logs_management_events("t", all_events).status == "pass"
    default = {"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": True}]}
    assert rules.trail_logs_management_events("t", default).status == "pass"
    writes_only = {
        "AdvancedEventSelectors": [
            {
                "Name": "m",
                "FieldSelectors": [
                    {"Field": "eventCategory", "Equals": ["Management"]},
                    {"Field": "readOnly", "Equals": ["false"]},
                ],
            }
        ]
    }
    assert rules.trail_logs_management_events("t", writes_only).status == "fail"
    data_only = _selector("AWS::S3::Object", None)
    assert rules.trail_logs_management_events("t", data_only).status == "fail"
    excluded = {"EventSelectors": [{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}]}
    assert rules.trail_logs_management_events("t", excluded).status == "fail"


NATIVE_CLIENT = {
    "ClientName": "web",
    "ExplicitAuthFlows": ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    "AllowedOAuthScopes": ["openid", "email", "profile"],
    "WriteAttributes": ["email", "name"],
}
FEDERATED_CLIENT = {
    "ClientName": "federated",
    "ExplicitAuthFlows": ["ALLOW_REFRESH_TOKEN_AUTH"],
    "AllowedOAuthScopes": ["openid", "email", "profile"],
    "WriteAttributes": ["email", "custom:idp_reg_no", "custom:hospital_code"],
}


def test_clients_cannot_write_granting_attributes() -> None:
    check = rules.user_pool_clients_cannot_write_granting_attributes
    ok = check("p", [NATIVE_CLIENT, FEDERATED_CLIENT])
    assert ok.status == "pass" and "federated (tokens cannot update attributes)" in ok.message
    for bad in (
        {**NATIVE_CLIENT, "WriteAttributes": ["email", "custom:institution_id"]},
        {k: v for k, v in NATIVE_CLIENT.items() if k != "WriteAttributes"},  # default: all
        {**FEDERATED_CLIENT, "ExplicitAuthFlows": ["ALLOW_USER_SRP_AUTH"]},
        {**FEDERATED_CLIENT, "ExplicitAuthFlows": []},  # Cognito's default includes SRP
        {**FEDERATED_CLIENT, "AllowedOAuthScopes": ["openid", "aws.cognito.signin.user.admin"]},
    ):
        result = check("p", [bad])
        assert result.status == "fail" and "lets its users write" in result.message, bad
    assert check("p", []).status == "fail"


def test_providers_release_what_their_placement_needs() -> None:
    check = rules.user_pool_providers_release_placement_claims
    assert check("p", {}, required={}).status == "pass"
    mapping = {"email": "mail", "custom:idp_reg_no": "urn:hk:mchk:reg_no"}
    providers = {"HA": {"AttributeMapping": mapping}}
    assert check("p", providers, required={"HA": ("reg_no",)}).status == "pass"
    needs_code = check("p", providers, required={"HA": ("reg_no", "hospital_code")})
    assert needs_code.status == "fail" and "custom:hospital_code" in needs_code.message
    assert check("p", {}, required={"HA": ("reg_no",)}).status == "fail"
    empty = {"HA": {"AttributeMapping": {**mapping, "custom:idp_reg_no": ""}}}
    assert check("p", empty, required={"HA": ("reg_no",)}).status == "fail"


# ---------------------------------------------------------------------------- role trust


def test_role_trust_bound_to_source() -> None:
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    bound = {
        "Version": "2012-10-17",
        "Statement": [
            {**statement, "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}
        ],
    }
    assert rules.role_trust_bound_to_source("svc", bound).passed
    assert rules.role_trust_bound_to_source("svc", json.dumps(bound)).passed
    unbound = rules.role_trust_bound_to_source("svc", {"Statement": [statement]})
    assert unbound.failed and "lambda.amazonaws.com" in unbound.message
    assert rules.role_trust_bound_to_source("svc", None).failed


# ---------------------------------------------------------------------------- monitoring


def _live_cis(drop: str = "") -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    from infra.components.monitoring import CIS_ALARMS

    filters: list[dict[str, object]] = [
        {
            "filterPattern": pattern,
            "metricTransformations": [{"metricName": metric, "metricNamespace": "Hub/CIS"}],
        }
        for cis_id, (metric, pattern) in CIS_ALARMS.items()
        if cis_id != drop
    ]
    alarms: list[dict[str, object]] = [
        {"Namespace": "Hub/CIS", "MetricName": metric, "AlarmActions": ["arn:sns"]}
        for metric, _ in CIS_ALARMS.values()
    ]
    return filters, alarms


def test_cis_metric_alarms() -> None:
    assert rules.cis_metric_alarms("/hub/trail", *_live_cis()).passed
    missing = rules.cis_metric_alarms("/hub/trail", *_live_cis(drop="4.12"))
    assert missing.failed and "CIS 4.12 " in missing.message
    filters, alarms = _live_cis()
    disabled = [{**a, "ActionsEnabled": False} for a in alarms]
    assert rules.cis_metric_alarms("/hub/trail", filters, disabled).failed


def test_trail_records_insights() -> None:
    both = [{"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiErrorRateInsight"}]
    assert rules.trail_records_insights("t", both).passed
    assert rules.trail_records_insights("t", both[:1]).failed
    assert rules.trail_records_insights("t", None).failed  # Insights never enabled


def test_lambda_data_events_need_an_unnarrowed_selector() -> None:
    arn = "arn:aws:lambda:ap-east-1:123456789012:function:hub-p1-api"
    selector = {
        "Name": "functions",
        "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Data"]},
            {"Field": "resources.type", "Equals": ["AWS::Lambda::Function"]},
            {"Field": "resources.ARN", "StartsWith": [arn.rsplit("-", 1)[0] + "-"]},
        ],
    }
    kind = "AWS::Lambda::Function"
    covered = rules.trail_logs_data_events(
        "t", {"AdvancedEventSelectors": [selector]}, resource_type=kind, resource_arn=arn
    )
    assert covered.passed
    other = rules.trail_logs_data_events(
        "t",
        {"AdvancedEventSelectors": [selector]},
        resource_type=kind,
        resource_arn=arn.replace("hub-p1-api", "other-api"),
    )
    assert other.failed


# ---------------------------------------------------------------------------- audit lifecycle


def test_audit_bucket_lifecycle() -> None:
    rule = {
        "ID": "r",
        "Status": "Enabled",
        "Expiration": {"Days": 2556},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    }
    assert rules.audit_bucket_lifecycle("b", [rule], years=7).passed
    early = rules.audit_bucket_lifecycle("b", [{**rule, "Expiration": {"Days": 30}}], years=7)
    assert early.failed and "before the 2555-day" in early.message
    assert rules.audit_bucket_lifecycle("b", None, years=7).failed


# -- cognito.intake_channel ---------------------------------------------------------------

INTAKE_SCOPE = "hub-intake/records.write"
INTAKE_SERVER = [{"Identifier": "hub-intake", "Scopes": [{"ScopeName": "records.write"}]}]


def _intake_client(client_id: str = "cms1", **changes: object) -> dict[str, object]:
    return {
        "ClientId": client_id,
        "ClientName": f"hub-p2-intake-{client_id}",
        "ClientSecret": "s",
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthFlows": ["client_credentials"],
        "AllowedOAuthScopes": [INTAKE_SCOPE],
        **changes,
    }


NATIVE = {"ClientId": "native", "ClientName": "hub-p2-client", "AllowedOAuthScopes": ["openid"]}


def _intake(servers: list[dict[str, object]], clients: list[dict[str, object]], ids: list[str]):  # type: ignore[no-untyped-def]
    return rules.user_pool_intake_channel(
        "pool",
        servers,
        clients,
        intake_client_ids=ids,
        resource_server="hub-intake",
        scope=INTAKE_SCOPE,
    )


def test_intake_channel_compliant() -> None:
    assert _intake(INTAKE_SERVER, [NATIVE, _intake_client()], ["cms1"]).passed
    assert _intake([], [NATIVE], []).passed  # phase 1: nothing declared, nothing granted


@pytest.mark.parametrize(
    ("servers", "clients", "says"),
    [
        ([], [NATIVE, _intake_client()], "no resource server"),
        (
            [{"Identifier": "hub-intake", "Scopes": [{"ScopeName": "records.read"}]}],
            [NATIVE, _intake_client()],
            "lacks",
        ),
        (INTAKE_SERVER, [NATIVE], "not found"),
        (
            INTAKE_SERVER,
            [NATIVE, _intake_client(AllowedOAuthFlows=["client_credentials", "code"])],
            "client_credentials only",
        ),
        (
            INTAKE_SERVER,
            [NATIVE, _intake_client(AllowedOAuthScopes=[INTAKE_SCOPE, "openid"])],
            "only",
        ),
        (INTAKE_SERVER, [NATIVE, _intake_client(ClientSecret=None)], "no secret"),
        (
            INTAKE_SERVER,
            [{**NATIVE, "AllowedOAuthScopes": ["openid", INTAKE_SCOPE]}, _intake_client()],
            "carries",
        ),
    ],
)
def test_intake_channel_non_compliant(
    servers: list[dict[str, object]], clients: list[dict[str, object]], says: str
) -> None:
    result = _intake(servers, clients, ["cms1"])
    assert result.failed and says in result.message
