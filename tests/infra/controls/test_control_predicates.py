"""The shared predicates on plain values: each with compliant and non-compliant cases.

The rules of the pack and of verify are tested on their own inputs in
``tests/infra/policies`` and ``tests/infra/verify``; here the decisions themselves.
"""

from __future__ import annotations

from typing import Any

import pytest

from infra.controls import policy_documents as docs
from infra.controls import predicates
from infra.controls.result import Status, failed, not_applicable, passed

BUCKET_ARN = "arn:aws:s3:::hub-p1-shards-111122223333"
DENY_HTTP = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def test_results_speak_one_status_vocabulary() -> None:
    assert [s.value for s in Status] == ["pass", "fail", "not_applicable"]
    assert passed("m").passed and failed("m").failed and not_applicable("m").not_applicable
    assert failed("m", "r").resource == "r"
    assert Status.NOT_APPLICABLE == "not_applicable"


# --- matching -----------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["s3:*", "S3:*", "*", "s*", "*:*", "s?:*", "s3*", "*3:**"])
def test_patterns_that_name_every_s3_action(pattern: str) -> None:
    assert docs.actions_cover_service([pattern], "s3")


@pytest.mark.parametrize(
    "patterns",
    [
        ["s3:Get*"],
        ["s3:*Object"],
        ["s3:?*"],  # needs one more character: not every string
        ["kms:*"],
        ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteBucket"],
        ["s3:[a-z]*"],  # IAM has no character classes: a literal bracket
        [],
    ],
)
def test_patterns_that_do_not_name_every_s3_action(patterns: list[str]) -> None:
    assert not docs.actions_cover_service(patterns, "s3")


def test_actions_ignore_case_and_arns_do_not() -> None:
    assert docs.action_matches(["S3:getobject"], "s3:GetObject")
    assert not docs.resource_matches([BUCKET_ARN.upper()], BUCKET_ARN)
    assert docs.resource_matches(["arn:aws:s3:::hub-p1-*"], BUCKET_ARN)
    assert docs.resources_cover_prefix([f"{BUCKET_ARN}/*"], f"{BUCKET_ARN}/")
    assert not docs.resources_cover_prefix([f"{BUCKET_ARN}/a*"], f"{BUCKET_ARN}/")


def test_condition_keys_ignore_case() -> None:
    condition = {"Bool": {"AWS:SECURETRANSPORT": "false"}, "ArnLike": {"aws:sourcearn": "x"}}
    assert docs.condition_value(condition, "Bool", "aws:SecureTransport") == "false"
    assert docs.condition_values(condition, "aws:SourceArn") == ["x"]
    assert docs.condition_value(None, "Bool", "aws:SecureTransport") is None


def test_unreadable_documents_are_none() -> None:
    assert docs.policy_statements("not json") is None
    assert docs.policy_statements('["a list"]') is None
    assert docs.policy_statements({"Statement": DENY_HTTP}) == [DENY_HTTP]


# --- TLS only -----------------------------------------------------------------------------


def test_deny_without_tls_on_every_action_bucket_and_object() -> None:
    assert docs.insecure_transport_deny([DENY_HTTP], BUCKET_ARN) is DENY_HTTP
    everything = {**DENY_HTTP, "Action": "*", "Resource": "arn:aws:s3:::hub-p1-*"}
    assert docs.statement_denies_insecure_transport(everything, BUCKET_ARN)


@pytest.mark.parametrize(
    "change",
    [
        {"Effect": "Allow"},
        {"Principal": {"AWS": "arn:aws:iam::111122223333:root"}},
        {"Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteBucket"]},
        {"Resource": BUCKET_ARN},
        {"Resource": f"{BUCKET_ARN}/*"},
        {"Resource": [BUCKET_ARN, f"{BUCKET_ARN}/records/*"]},
        {"Resource": ["arn:aws:s3:::another", "arn:aws:s3:::another/*"]},
        {"Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        {"Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}}},
        {"Condition": None},
    ],
)
def test_statements_that_do_not_deny_insecure_transport(change: dict[str, Any]) -> None:
    assert docs.insecure_transport_deny([{**DENY_HTTP, **change}], BUCKET_ARN) is None


# --- IAM ----------------------------------------------------------------------------------

SCOPED = {
    "Sid": "Shards",
    "Effect": "Allow",
    "Action": ["s3:GetObject", "kms:Decrypt"],
    "Resource": f"{BUCKET_ARN}/*",
}


def test_named_grants_and_wildcard_denies_pass() -> None:
    deny = {"Effect": "Deny", "Action": "*", "Resource": "*"}
    tracing = {"Effect": "Allow", "Action": "xray:PutTraceSegments", "Resource": "*"}
    assert docs.data_store_wildcard_grants([SCOPED, deny, tracing]) == []


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ({**SCOPED, "Action": "*"}, "allows *"),
        ({**SCOPED, "Action": "*:GetObject"}, "allows *:GetObject"),
        ({**SCOPED, "Action": "s?:GetObject"}, "allows s?:GetObject"),
        ({**SCOPED, "Action": "dynamodb:Get*"}, "allows dynamodb:Get*"),
        ({**SCOPED, "Action": "KMS:GenerateDataKey*"}, "allows KMS:GenerateDataKey*"),
        ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, "allows NotAction"),
        ({**SCOPED, "Resource": "*"}, "allows data-store actions on every resource"),
        (
            {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": BUCKET_ARN},
            "allows data-store actions on every resource",
        ),
    ],
)
def test_wildcard_grants_name_their_statement(statement: dict[str, Any], problem: str) -> None:
    found = docs.data_store_wildcard_grants([SCOPED, statement])
    assert (str(statement.get("Sid") or 1), problem) in found


# --- Lambda invocation --------------------------------------------------------------------

API = {
    "Sid": "api",
    "Effect": "Allow",
    "Principal": {"Service": "apigateway.amazonaws.com"},
    "Action": "lambda:InvokeFunction",
    "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:execute-api:ap-east-1:1:a/*/*"}},
}


@pytest.mark.parametrize(
    "statement",
    [
        API,
        {**API, "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Condition": None},
        {**API, "Effect": "Deny", "Principal": "*"},
    ],
)
def test_named_callers_may_invoke(statement: dict[str, Any]) -> None:
    assert docs.public_invocation_grants([statement], account_id="111122223333") == []


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ({**API, "Principal": "*"}, "lets anyone invoke"),
        ({**API, "Principal": {"AWS": "*"}}, "lets anyone invoke"),
        ({**API, "Principal": None}, "lets anyone invoke"),
        ({**API, "Condition": None}, "without a source ARN"),
        (
            {**API, "Condition": {"StringEquals": {"AWS:SourceAccount": "111122223333"}}},
            "without a source ARN",
        ),
        (
            {
                **API,
                "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
            },
            "unauthenticated function URL",
        ),
        (
            {**API, "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Condition": None},
            "another account",
        ),
    ],
)
def test_callers_too_many_to_name(statement: dict[str, Any], problem: str) -> None:
    [(sid, found)] = docs.public_invocation_grants([statement], account_id="111122223333")
    assert sid == "api" and problem in found


# --- settings -----------------------------------------------------------------------------


def test_key_rotation() -> None:
    assert predicates.rotation_applies(None, None)
    assert predicates.rotation_applies("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    assert not predicates.rotation_applies("ECC_NIST_P256", "SIGN_VERIFY")
    assert not predicates.rotation_applies("HMAC_256", "GENERATE_VERIFY_MAC")
    assert predicates.rotation_problems(True, None) == []
    assert predicates.rotation_problems(True, 365) == []
    assert predicates.rotation_problems(None, None) == ["automatic rotation is off"]
    assert predicates.rotation_problems(False, 90) == ["automatic rotation is off"]
    assert predicates.rotation_problems("true", 730.0) == [
        "rotation is every 730 days (at most 365)"
    ]


def test_keys() -> None:
    arn = "arn:aws:kms:ap-east-1:111122223333:key/1111-aaaa"
    assert predicates.same_key(arn, "1111-aaaa") and not predicates.same_key(arn, None)
    assert predicates.is_customer_managed_key(arn)
    assert not predicates.is_customer_managed_key("alias/aws/s3")
    assert not predicates.is_customer_managed_key(None)


def test_default_encryption() -> None:
    key = "arn:aws:kms:ap-east-1:111122223333:key/1111-aaaa"
    assert predicates.default_encryption_is_kms([("aws:kms", key)])
    assert predicates.default_encryption_is_kms([("aws:kms:dsse", key)])
    assert not predicates.default_encryption_is_kms([])
    assert not predicates.default_encryption_is_kms([("aws:kms", "alias/aws/s3")])
    assert not predicates.default_encryption_is_kms([("AES256", None)])
    assert not predicates.default_encryption_is_kms(
        [("aws:kms", key)], key_matches=lambda k: predicates.same_key(k, "other")
    )
    assert predicates.default_encryption_is_sse_s3([("AES256", None)])
    assert not predicates.default_encryption_is_sse_s3([("aws:kms", key)])


def test_public_access_flags() -> None:
    flags = dict.fromkeys(predicates.PUBLIC_ACCESS_BLOCK_FLAGS, True)
    assert predicates.public_access_flags_off(flags) == []
    assert predicates.public_access_flags_off({**flags, "BlockPublicPolicy": False}) == [
        "BlockPublicPolicy"
    ]
    assert predicates.public_access_flags_off({}) == list(predicates.PUBLIC_ACCESS_BLOCK_FLAGS)


def test_trail_and_table_settings() -> None:
    assert predicates.trail_covers_all_regions(True, True)
    assert not predicates.trail_covers_all_regions(True, False)
    assert not predicates.trail_covers_all_regions(None, True)
    assert predicates.trail_validates_log_files(True) and not predicates.trail_validates_log_files(
        None
    )
    assert predicates.trail_is_logging(True) and not predicates.trail_is_logging(False)
    assert predicates.table_encrypted_with_kms(
        True, "k", key_matches=predicates.is_customer_managed_key
    )
    assert not predicates.table_encrypted_with_kms(
        False, "k", key_matches=predicates.is_customer_managed_key
    )
    assert predicates.point_in_time_recovery_enabled(True)
    assert not predicates.point_in_time_recovery_enabled("false")


def test_mfa() -> None:
    assert predicates.mfa_problems("ON", totp=True, sms=False, email=False) == []
    assert predicates.mfa_problems("ON", totp=None, sms=True, email=False) == []
    assert predicates.mfa_problems("OPTIONAL", totp=True, sms=True, email=True)
    assert predicates.mfa_problems(None, totp=True, sms=False, email=False) == [
        "MFA is OFF, not required (ON)"
    ]
    assert predicates.mfa_problems("ON", totp=None, sms=False, email=False)


def test_api_tls_policy() -> None:
    assert predicates.is_tls13_only_policy("SecurityPolicy_TLS13_1_3_2025_09")
    assert predicates.is_tls13_only_policy("SecurityPolicy_TLS13_1_3_FIPS_2025_09")
    for policy in ("TLS_1_2", "SecurityPolicy_TLS13_1_2_2021_06", "", None):
        assert not predicates.is_tls13_only_policy(policy)


def test_log_retention() -> None:
    assert predicates.retention_problems(365) == []
    assert predicates.retention_problems(2557.0, minimum_days=2555) == []
    assert predicates.retention_problems(None) == ["retention is not set (logs never expire)"]
    assert predicates.retention_problems(0) == ["retention is not set (logs never expire)"]
    assert predicates.retention_problems(True) == ["retention is not set (logs never expire)"]
    assert predicates.retention_problems(30) == ["retention 30 days is under 365"]
