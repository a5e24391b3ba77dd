"""Evaluation over plain snapshots: expectations from a record, fallbacks, unreadable input."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from ledger_data import signed_ledger, tampered

from app.messaging.homeserver import DeployedHomeserver, deployed_homeserver_config
from infra.components.monitoring import CIS_ALARMS
from infra.controls.result import Status
from infra.verify.checks import CHECKS
from infra.verify.evaluate import evaluate
from infra.verify.expectations import Expectations, expectations_from_record
from infra.verify.model import VerifyReport
from infra.verify.record import find_gap

ACCOUNT = "123456789012"
RECORDS_KEY = f"arn:aws:kms:ap-east-1:{ACCOUNT}:key/rec"
AUDIT_KEY = f"arn:aws:kms:ap-east-1:{ACCOUNT}:key/aud"
SIGNING_KEY = f"arn:aws:kms:ap-east-1:{ACCOUNT}:key/sig"
SHARDS, LOGS, AUDIT = "hub-p1-shards", "hub-p1-access-logs", "hub-p1-audit"
TRAIL = f"arn:aws:cloudtrail:ap-east-1:{ACCOUNT}:trail/hub-p1-trail"
POOL = "ap-east-1_pool"
POOL_ARN = f"arn:aws:cognito-idp:ap-east-1:{ACCOUNT}:userpool/{POOL}"
TABLES = {"records": "hub-p1-records", "ledger": "hub-p1-ledger"}
MESSAGING_KEY = f"arn:aws:kms:ap-east-1:{ACCOUNT}:key/msg"
DATABASE = "hub-p1-messaging"
DATABASE_ARN = f"arn:aws:rds:ap-east-1:{ACCOUNT}:db:{DATABASE}"
MEDIA = f"hub-p1-messaging-media-{ACCOUNT}"
BALANCER = f"arn:aws:elasticloadbalancing:ap-east-1:{ACCOUNT}:loadbalancer/app/hub-p1-matrix/abc"
FAMILY = "hub-p1-homeserver"


VAULT = "hub-p1-backup"
BACKUP_KEY = f"arn:aws:kms:ap-east-1:{ACCOUNT}:key/backup"


def backup_part() -> dict[str, Any]:
    """A locked vault under its CMK, and a plan keeping every data class 35 days whose
    selection names every table and the shard and audit buckets."""
    return {
        "vault": {
            "BackupVaultName": VAULT,
            "EncryptionKeyArn": BACKUP_KEY,
            "Locked": True,
            "MinRetentionDays": 35,
            "MaxRetentionDays": 35,
        },
        "plans": [
            {
                "id": "plan1",
                "plan": {
                    "Rules": [
                        {
                            "RuleName": data_class,
                            "TargetBackupVaultName": VAULT,
                            "Lifecycle": {"DeleteAfterDays": 35},
                        }
                        for data_class in (
                            "ledger",
                            "audit-objects",
                            "records",
                            "operational",
                            "messages",
                        )
                    ]
                },
                "selected": [
                    *(table_arn(n) for n in TABLES.values()),
                    f"arn:aws:s3:::{SHARDS}",
                    f"arn:aws:s3:::{AUDIT}",
                    DATABASE_ARN,
                ],
            }
        ],
    }


def table_arn(name: str) -> str:
    return f"arn:aws:dynamodb:ap-east-1:{ACCOUNT}:table/{name}"


@dataclass
class Record:
    stack: str = "phase1-specialist"
    outputs: dict[str, Any] = field(
        default_factory=lambda: {
            "phase": 1,
            "region": "ap-east-1",
            "recordsKeyArn": RECORDS_KEY,
            "auditKeyArn": AUDIT_KEY,
            "signingKeyArn": SIGNING_KEY,
            "messagingKeyArn": MESSAGING_KEY,
            "shardBucketName": SHARDS,
            "accessLogBucketName": LOGS,
            "auditBucketName": AUDIT,
            "tableNames": dict(TABLES),
            "trailArn": TRAIL,
            "trailLogGroupName": "/hub/hub-p1/cloudtrail",
            "userPoolId": POOL,
            "apiId": "api1",
            "functionName": "hub-p1-api",
            "backupVaultName": VAULT,
        }
    )
    resources: list[Any] = field(
        default_factory=lambda: (
            [
                {"type": "aws:lambda/function:Function", "name": n, "id": f"hub-p1-{n}"}
                for n in ("pre-sign-up", "pre-token")
            ]
            + [
                {"type": "aws:rds/instance:Instance", "name": "messaging-db", "id": DATABASE},
                {"type": "aws:lb/loadBalancer:LoadBalancer", "name": "matrix", "id": BALANCER},
                {
                    "type": "aws:ecs/taskDefinition:TaskDefinition",
                    "name": "homeserver",
                    "id": f"{FAMILY}:1",
                    "inputs": {"family": FAMILY},
                },
            ]
        )
    )
    gaps: list[Any] = field(default_factory=list)


def expectations(record: Record | None = None, **overrides: Any) -> Expectations:
    args: dict[str, Any] = {
        "phase": 1,
        "audit_retention_years": 7,
        "federation": {},
        "waf": True,
        "throttle": (50.0, 100),
    }
    args.update(overrides)
    return expectations_from_record(record or Record(), **args)


def _bucket(name: str, key: str | None, *, logging_to: str | None) -> dict[str, Any]:
    arn = f"arn:aws:s3:::{name}"
    sse: dict[str, Any] = (
        {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key} if key else {"SSEAlgorithm": "AES256"}
    )
    return {
        "name": name,
        "encryption": {"Rules": [{"ApplyServerSideEncryptionByDefault": sse}]},
        "versioning": {"Status": "Enabled"},
        "public_access_block": {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
        "ownership": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "policy": json.dumps(
            {
                "Statement": [
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [arn, f"{arn}/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ]
            }
        ),
        "logging": {"LoggingEnabled": {"TargetBucket": logging_to, "TargetPrefix": "x/"}}
        if logging_to
        else {},
        "object_lock": None,
    }


def _table(name: str, key: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": {
            "TableArn": table_arn(name),
            "DeletionProtectionEnabled": True,
            "SSEDescription": {"Status": "ENABLED", "SSEType": "KMS", "KMSMasterKeyArn": key},
        },
        "backups": {"PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "ENABLED"}},
    }


def _log_group(name: str, days: int) -> dict[str, Any]:
    return {"logGroupName": name, "kmsKeyId": AUDIT_KEY, "retentionInDays": days}


def compliant_snapshot() -> dict[str, Any]:
    symmetric = {
        "KeyState": "Enabled",
        "Enabled": True,
        "KeySpec": "SYMMETRIC_DEFAULT",
        "KeyUsage": "ENCRYPT_DECRYPT",
    }
    rotation = {"KeyRotationEnabled": True, "RotationPeriodInDays": 365}
    key_policy = json.dumps(
        {
            "Statement": [
                {
                    "Sid": "KeyAdministrationOnly",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": ["kms:Describe*", "kms:Put*", "kms:Enable*"],
                    "Resource": "*",
                },
                {
                    "Sid": "Service",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/svc"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": "*",
                },
            ]
        }
    )
    audit = _bucket(AUDIT, AUDIT_KEY, logging_to=LOGS)
    audit["object_lock"] = {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 7}},
    }
    audit["lifecycle"] = [
        {
            "ID": "expire-after-audit-retention",
            "Status": "Enabled",
            "Expiration": {"Days": 7 * 365 + 1},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        }
    ]
    service_policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem"],
                "Resource": [table_arn(n) for n in TABLES.values()],
            },
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"arn:aws:s3:::{SHARDS}/*"},
        ]
    }
    snapshot: dict[str, Any] = {
        "keys": {
            "records": {
                "arn": RECORDS_KEY,
                "metadata": symmetric,
                "rotation": rotation,
                "policy": key_policy,
            },
            "audit": {
                "arn": AUDIT_KEY,
                "metadata": symmetric,
                "rotation": rotation,
                "policy": key_policy,
            },
            "signing": {
                "arn": SIGNING_KEY,
                "rotation": None,
                "metadata": {**symmetric, "KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"},
            },
            "messaging": {
                "arn": MESSAGING_KEY,
                "metadata": symmetric,
                "rotation": rotation,
                "policy": key_policy,
            },
        },
        "buckets": {
            "shard": _bucket(SHARDS, RECORDS_KEY, logging_to=LOGS),
            "access_log": _bucket(LOGS, None, logging_to=None),
            "audit": audit,
        },
        "trail": {
            "arn": TRAIL,
            "description": {
                "IsMultiRegionTrail": True,
                "IncludeGlobalServiceEvents": True,
                "LogFileValidationEnabled": True,
                "KmsKeyId": AUDIT_KEY,
            },
            "status": {"IsLogging": True},
            "insights": [
                {"InsightType": "ApiCallRateInsight"},
                {"InsightType": "ApiErrorRateInsight"},
            ],
            "selectors": {
                "AdvancedEventSelectors": [
                    {
                        "Name": "shards",
                        "FieldSelectors": [
                            {"Field": "eventCategory", "Equals": ["Data"]},
                            {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                            {"Field": "resources.ARN", "StartsWith": [f"arn:aws:s3:::{SHARDS}/"]},
                        ],
                    },
                    {
                        "Name": "functions",
                        "FieldSelectors": [
                            {"Field": "eventCategory", "Equals": ["Data"]},
                            {"Field": "resources.type", "Equals": ["AWS::Lambda::Function"]},
                            {
                                "Field": "resources.ARN",
                                "StartsWith": [
                                    f"arn:aws:lambda:ap-east-1:{ACCOUNT}:function:hub-p1-"
                                ],
                            },
                        ],
                    },
                    {
                        "Name": "tables",
                        "FieldSelectors": [
                            {"Field": "eventCategory", "Equals": ["Data"]},
                            {"Field": "resources.type", "Equals": ["AWS::DynamoDB::Table"]},
                            {
                                "Field": "resources.ARN",
                                "Equals": [table_arn(n) for n in TABLES.values()],
                            },
                        ],
                    },
                ]
            },
        },
        "tables": {
            "records": _table(TABLES["records"], RECORDS_KEY),
            "ledger": _table(TABLES["ledger"], AUDIT_KEY),
        },
        "user_pool": {
            "id": POOL,
            "description": {
                "MfaConfiguration": "ON",
                "Policies": {
                    "PasswordPolicy": {
                        "MinimumLength": 14,
                        "RequireUppercase": True,
                        "RequireLowercase": True,
                        "RequireNumbers": True,
                        "RequireSymbols": True,
                        "TemporaryPasswordValidityDays": 1,
                    }
                },
                "SchemaAttributes": [
                    {"Name": "custom:mchk_reg_no", "Mutable": False},
                    {"Name": "custom:institution_id", "Mutable": True},
                    {"Name": "custom:specialty", "Mutable": True},
                    {"Name": "custom:idp_reg_no", "Mutable": True},
                    {"Name": "custom:hospital_code", "Mutable": True},
                    {"Name": "custom:idp_groups", "Mutable": True},
                ],
            },
            "mfa": {
                "MfaConfiguration": "ON",
                "SoftwareTokenMfaConfiguration": {"Enabled": True},
            },
            "groups": [
                {"GroupName": g}
                for g in ("doctor", "specialist", "institution_admin", "auditor", "platform_admin")
            ],
            "providers": [],
            "clients": [
                {
                    "ClientName": "hub-p1-web",
                    "ExplicitAuthFlows": ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
                    "WriteAttributes": ["email", "name"],
                }
            ],
            "provider_details": {},
            "resource_servers": [],
        },
        "api": {
            "id": "api1",
            "rest_api": {"id": "api1", "securityPolicy": "SecurityPolicy_TLS13_1_3_2025_09"},
            "resources": [
                {
                    "path": "/",
                    "resourceMethods": {
                        "ANY": {"authorizationType": "COGNITO_USER_POOLS", "authorizerId": "a1"}
                    },
                },
                {"path": "/health", "resourceMethods": {"GET": {"authorizationType": "NONE"}}},
            ],
            "authorizers": [
                {
                    "id": "a1",
                    "name": "cognito",
                    "type": "COGNITO_USER_POOLS",
                    "providerARNs": [POOL_ARN],
                }
            ],
        },
        "functions": {
            "hub-p1-api": {
                "name": "hub-p1-api",
                "configuration": {"Role": "arn:aws:iam::1:role/svc"},
                "policy": None,
                "role": {
                    "name": "svc",
                    "documents": {"svc-policy": service_policy},
                    "trust": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                                "Condition": {"StringEquals": {"aws:SourceAccount": "1"}},
                            }
                        ],
                    },
                },
            }
        },
        "backup": backup_part(),
        "monitoring": {
            "log_group": "/hub/hub-p1/cloudtrail",
            "filters": [
                {
                    "filterPattern": pattern,
                    "metricTransformations": [{"metricName": m, "metricNamespace": "Hub/CIS"}],
                }
                for m, pattern in CIS_ALARMS.values()
            ],
            "alarms": [
                {"Namespace": "Hub/CIS", "MetricName": m, "AlarmActions": ["arn:sns"]}
                for m, _ in CIS_ALARMS.values()
            ],
        },
        "log_groups": {
            "/aws/lambda/hub-p1-api": _log_group("/aws/lambda/hub-p1-api", 365),
            "/hub/hub-p1/cloudtrail": _log_group("/hub/hub-p1/cloudtrail", 2557),
        },
    }

    snapshot["keys"]["signing"]["policy"] = key_policy
    snapshot["databases"] = {
        DATABASE: {
            "instance": {
                "DBInstanceIdentifier": DATABASE,
                "StorageEncrypted": True,
                "KmsKeyId": MESSAGING_KEY,
                "PubliclyAccessible": False,
            },
            "parameters": {"rds.force_ssl": "1"},
        }
    }
    snapshot["load_balancers"] = {
        BALANCER: {
            "listeners": [
                {
                    "Port": 443,
                    "Protocol": "HTTPS",
                    "SslPolicy": "ELBSecurityPolicy-TLS13-1-3-2021-06",
                }
            ]
        }
    }
    homeserver_config = deployed_homeserver_config(
        DeployedHomeserver(
            server_name="hub.example",
            public_baseurl="https://matrix.hub.example/",
            database_host="db.internal",
            database_name="synapse",
            database_user="synapse",
            media_bucket="hub-p1-media",
            region="ap-east-1",
        )
    )
    snapshot["task_definitions"] = {
        FAMILY: {
            "definition": {
                "family": FAMILY,
                "containerDefinitions": [
                    {
                        "name": "synapse",
                        "environment": [
                            {
                                "name": "HUB_HOMESERVER_CONFIG",
                                "value": json.dumps(homeserver_config),
                            }
                        ],
                    }
                ],
            }
        }
    }
    snapshot["trail"]["selectors"]["AdvancedEventSelectors"].insert(
        0,
        {
            "Name": "management-events",
            "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}],
        },
    )
    shard_arn = f"arn:aws:s3:::{SHARDS}"
    shard_policy = json.loads(snapshot["buckets"]["shard"]["policy"])
    shard_policy["Statement"] += [
        {
            "Sid": "DenyPutWithoutSseKms",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": f"{shard_arn}/*",
            "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
        },
        {
            "Sid": "DenyPutWithAnotherKey",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": f"{shard_arn}/*",
            "Condition": {
                "StringNotEqualsIfExists": {
                    "s3:x-amz-server-side-encryption-aws-kms-key-id": RECORDS_KEY
                }
            },
        },
    ]
    snapshot["buckets"]["shard"]["policy"] = json.dumps(shard_policy)
    snapshot["user_pool"]["description"].update(
        {
            "LambdaConfig": {
                "PreSignUp": f"arn:aws:lambda:ap-east-1:{ACCOUNT}:function:hub-p1-pre-sign-up",
                "PreTokenGenerationConfig": {
                    "LambdaVersion": "V2_0",
                    "LambdaArn": f"arn:aws:lambda:ap-east-1:{ACCOUNT}:function:hub-p1-pre-token",
                },
            },
            "UserPoolAddOns": {"AdvancedSecurityMode": "ENFORCED"},
        }
    )
    snapshot["api"]["stages"] = [
        {
            "stageName": "v1",
            "methodSettings": {
                "*/*": {
                    "throttlingRateLimit": 50.0,
                    "throttlingBurstLimit": 100,
                    "dataTraceEnabled": False,
                }
            },
        }
    ]
    snapshot["api"]["web_acls"] = {
        "v1": {
            "Name": "waf",
            "Rules": [{"Name": "rate", "Statement": {"RateBasedStatement": {"Limit": 2000}}}],
        }
    }
    for name in ("hub-p1-pre-sign-up", "hub-p1-pre-token"):
        snapshot["functions"][name] = {**snapshot["functions"]["hub-p1-api"], "name": name}
        group = f"/aws/lambda/{name}"
        snapshot["log_groups"][group] = _log_group(group, 365)
    snapshot["ledger"] = signed_ledger(table=TABLES["ledger"], bucket=AUDIT)
    return snapshot


def report(snapshot: dict[str, Any], expect: Expectations | None = None) -> VerifyReport:
    return VerifyReport("phase1-specialist", evaluate(expect or expectations(), snapshot))


def test_compliant_snapshot_passes_with_every_area_checked() -> None:
    result = report(compliant_snapshot())
    assert result.failed == [], [f"{c.id} {c.resource}: {c.evidence}" for c in result.failed]
    assert result.passed
    assert {c.id for c in result.checks} == set(CHECKS)


def test_one_result_per_check_and_resource() -> None:
    result = report(compliant_snapshot())
    keys = [(c.id, c.resource) for c in result.checks]
    assert len(keys) == len(set(keys))


def test_every_check_is_in_the_catalogue_with_controls() -> None:
    for spec in CHECKS.values():
        assert any(str(r).startswith("ISO 27799") for r in spec.requirements), spec.id
        # Cap. 486 only where the check really evidences a principle (not API throttling)
        cap486 = any(str(r).startswith("Cap. 486 DPP") for r in spec.requirements)
        assert cap486 or spec.id == "api.throttling", spec.id
        assert spec.remediation
    for check in report(compliant_snapshot()).checks:
        assert check.controls == [str(r) for r in CHECKS[check.id].requirements]


def test_empty_report_does_not_pass() -> None:
    assert not VerifyReport("s", []).passed


@pytest.mark.parametrize(
    ("path", "value", "check_id", "resource"),
    [
        (
            ("keys", "records", "rotation"),
            {"KeyRotationEnabled": False},
            "keys.rotation_enabled",
            f"records key {RECORDS_KEY}",
        ),
        (("buckets", "shard", "public_access_block"), None, "buckets.public_access_block", SHARDS),
        (("buckets", "audit", "logging"), {}, "buckets.access_logging", AUDIT),
        (("trail", "status"), {"IsLogging": False}, "trail.logging", TRAIL),
        (
            ("tables", "ledger", "backups"),
            {"PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}},
            "dynamodb.pitr",
            TABLES["ledger"],
        ),
        (("user_pool", "mfa"), {"MfaConfiguration": "OFF"}, "cognito.mfa_on", POOL),
        (
            ("functions", "hub-p1-api", "policy"),
            json.dumps(
                {
                    "Statement": [
                        {"Sid": "pub", "Effect": "Allow", "Principal": "*", "Action": "lambda:*"}
                    ]
                }
            ),
            "lambda.no_public_policy",
            "hub-p1-api",
        ),
        (
            ("databases", DATABASE, "instance", "PubliclyAccessible"),
            True,
            "messaging.database_not_public",
            DATABASE,
        ),
        (
            ("databases", DATABASE, "instance", "KmsKeyId"),
            RECORDS_KEY,
            "messaging.database_encrypted",
            DATABASE,
        ),
        (
            ("databases", DATABASE, "parameters"),
            {"rds.force_ssl": "0"},
            "messaging.database_requires_tls",
            DATABASE,
        ),
        (
            ("load_balancers", BALANCER, "listeners"),
            [{"Port": 443, "Protocol": "HTTPS", "SslPolicy": "ELBSecurityPolicy-TLS-1-2-2017-01"}],
            "messaging.listener_tls13",
            "hub-p1-matrix:443",
        ),
        (
            ("task_definitions", FAMILY, "definition", "containerDefinitions"),
            [{"name": "synapse", "environment": []}],
            "messaging.federation_closed",
            FAMILY,
        ),
    ],
)
def test_one_change_fails_exactly_that_check(
    path: tuple[str, ...], value: Any, check_id: str, resource: str
) -> None:
    snapshot = compliant_snapshot()
    target = snapshot
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    result = report(snapshot)
    assert [(c.id, c.resource) for c in result.failed] == [(check_id, resource)]


def test_records_key_on_the_ledger_table_fails() -> None:
    snapshot = compliant_snapshot()
    snapshot["tables"]["ledger"] = _table(TABLES["ledger"], RECORDS_KEY)
    failed = report(snapshot).failed
    assert [(c.id, c.resource) for c in failed] == [
        ("dynamodb.customer_key_encryption", TABLES["ledger"])
    ]


def test_unreadable_input_fails_with_the_reason() -> None:
    snapshot = compliant_snapshot()
    snapshot["buckets"]["shard"]["policy"] = {"unreadable": "AccessDenied: no s3:GetBucketPolicy"}
    failures = report(snapshot).failed
    assert [f.id for f in failures] == [
        "buckets.denies_insecure_transport",
        "buckets.requires_sse_kms_puts",
    ]
    assert all("AccessDenied" in f.evidence for f in failures)


def test_resource_missing_from_the_snapshot_fails() -> None:
    snapshot = compliant_snapshot()
    del snapshot["tables"]["records"]
    del snapshot["log_groups"]["/hub/hub-p1/cloudtrail"]
    failed = {(c.id, c.resource) for c in report(snapshot).failed}
    assert ("dynamodb.pitr", TABLES["records"]) in failed
    assert ("trail.data_event_selectors", TABLES["records"]) in failed
    assert ("logs.encrypted_retained", "/hub/hub-p1/cloudtrail") in failed


def test_object_lock_years_come_from_the_stage() -> None:
    result = report(compliant_snapshot(), expectations(audit_retention_years=10))
    assert [(c.id, c.resource) for c in result.failed] == [
        ("trail.bucket_object_lock", AUDIT),
        # a 7-year lifecycle would expire audit data before a 10-year retention
        ("buckets.audit_lifecycle", AUDIT),
        ("logs.encrypted_retained", "/hub/hub-p1/cloudtrail"),
    ]


def test_federation_expected_from_the_stage() -> None:
    expect = expectations(
        phase=2,
        federation={"VictoriaGeneral": "SAML"},
        provider_claims={"VictoriaGeneral": ("reg_no", "hospital_code")},
    )
    assert [c.id for c in report(compliant_snapshot(), expect).failed] == [
        "cognito.federation",
        "cognito.providers_release_placement_claims",
    ]
    snapshot = compliant_snapshot()
    snapshot["user_pool"]["providers"] = [
        {"ProviderName": "VictoriaGeneral", "ProviderType": "SAML"}
    ]
    mapping = {"email": "mail", "custom:idp_reg_no": "urn:hk:mchk:reg_no"}
    snapshot["user_pool"]["provider_details"] = {
        "VictoriaGeneral": {"ProviderName": "VictoriaGeneral", "AttributeMapping": mapping}
    }
    assert [c.id for c in report(snapshot, expect).failed] == [
        "cognito.providers_release_placement_claims"
    ]
    mapping["custom:hospital_code"] = "urn:hk:ha:hospital_code"
    assert report(snapshot, expect).passed


def test_a_client_that_lets_users_write_a_granting_attribute_fails_exactly_that_check() -> None:
    snapshot = compliant_snapshot()
    snapshot["user_pool"]["clients"][0]["WriteAttributes"] = ["email", "custom:institution_id"]
    failed = report(snapshot, expectations()).failed
    assert [(c.id, c.resource) for c in failed] == [("cognito.client_write_attributes", POOL)]
    assert "custom:institution_id" in failed[0].evidence


# ------------------------------------------------------------------ declared fallbacks


@dataclass(frozen=True)
class Gap:
    resource: str
    type: str
    property: str
    reason: str
    covered_by: tuple[str, ...] = ()


def _record_with_api_gap() -> Record:
    record = Record()
    record.resources += [
        {
            "type": "aws:apigateway/restApi:RestApi",
            "name": "service-api",
            "id": "api1",
            "inputs": {"securityPolicy": "SecurityPolicy_TLS13_1_3_2025_09"},
        }
    ]
    record.gaps = [
        Gap(
            "service-api",
            "aws:apigateway/restApi:RestApi",
            "securityPolicy/endpointAccessMode",
            "no TLS termination",
            ("api.tls_policy",),
        )
    ]
    return record


def test_api_tls_policy_from_the_declared_value_when_the_emulator_records_a_gap() -> None:
    snapshot = compliant_snapshot()
    del snapshot["api"]["rest_api"]["securityPolicy"]
    assert [c.id for c in report(snapshot).failed] == ["api.tls_policy"]  # no gap: fails
    result = report(snapshot, expectations(_record_with_api_gap()))
    check = result.result("api.tls_policy", "api1")
    assert check.status == "pass"
    assert "as declared (emulator gap: no TLS termination)" in check.evidence


def test_declared_tls_policy_is_still_checked() -> None:
    record = _record_with_api_gap()
    record.resources[-1]["inputs"]["securityPolicy"] = "TLS_1_2"
    snapshot = compliant_snapshot()
    del snapshot["api"]["rest_api"]["securityPolicy"]
    assert [c.id for c in report(snapshot, expectations(record)).failed] == ["api.tls_policy"]


def test_conditional_bucket_policy_checked_as_declared_under_a_gap() -> None:
    declared = compliant_snapshot()["buckets"]["shard"]["policy"]
    record = Record()
    record.resources += [
        {
            "type": "aws:s3/bucketPolicy:BucketPolicy",
            "name": "storage-shards-policy",
            "id": SHARDS,
            "inputs": {"bucket": SHARDS, "policy": declared},
        }
    ]
    record.gaps = [
        {
            "resource": "storage-shards-policy",
            "type": "aws:s3/bucketPolicy:BucketPolicy",
            "property": "policy",
            "reason": "moto ignores Condition blocks",
        }
    ]
    snapshot = compliant_snapshot()
    snapshot["buckets"]["shard"]["policy"] = json.dumps({"Statement": []})  # what moto holds
    assert [c.id for c in report(snapshot).failed] == [
        "buckets.denies_insecure_transport",
        "buckets.requires_sse_kms_puts",
    ]
    check = report(snapshot, expectations(record)).result(
        "buckets.denies_insecure_transport", SHARDS
    )
    assert check.status == "pass"
    assert "as declared (emulator gap: moto ignores Condition blocks)" in check.evidence
    # a declared document without the deny still fails
    record.resources[-1]["inputs"]["policy"] = json.dumps({"Statement": []})
    assert (
        report(snapshot, expectations(record))
        .result("buckets.denies_insecure_transport", SHARDS)
        .status
        == "fail"
    )


def test_find_gap_matches_wildcard_resources_of_the_type_only() -> None:
    gaps = [Gap("*", "aws:kms/key:Key", "policy", "r")]
    assert find_gap(gaps, ["keys-records"], ["policy"], type_token="aws:kms/key:Key")
    assert (
        find_gap(
            gaps,
            ["storage-shards-policy"],
            ["policy"],
            type_token="aws:s3/bucketPolicy:BucketPolicy",
        )
        is None
    )
    assert (
        find_gap(gaps, ["keys-records"], ["securityPolicy"], type_token="aws:kms/key:Key") is None
    )


def test_expectations_cover_record_functions_and_log_groups() -> None:
    record = Record()
    record.resources = [
        {
            "type": "aws:lambda/function:Function",
            "name": "identity-pre-token",
            "id": "hub-p1-pre-token",
            "inputs": {},
        },
        {
            "type": "aws:cloudwatch/logGroup:LogGroup",
            "name": "service-access-logs",
            "id": "/hub/hub-p1/api-access",
            "inputs": {},
        },
    ]
    expect = expectations(record)
    assert expect.functions == ("hub-p1-api", "hub-p1-pre-token")
    assert expect.log_groups == {
        "/hub/hub-p1/api-access": 365,
        "/aws/lambda/hub-p1-api": 365,
        "/aws/lambda/hub-p1-pre-token": 365,
        "/hub/hub-p1/cloudtrail": 7 * 365,
    }


def test_snapshot_is_not_mutated() -> None:
    snapshot = compliant_snapshot()
    before = copy.deepcopy(snapshot)
    report(snapshot)
    assert snapshot == before


def test_waf_not_applicable_where_the_phase_has_none() -> None:
    result = report(compliant_snapshot(), expectations(waf=False))
    [waf] = [c for c in result.checks if c.id == "api.waf_attached"]
    assert waf.status == "not_applicable"
    snapshot = compliant_snapshot()
    snapshot["api"]["web_acls"] = {"v1": None}
    assert [c.id for c in report(snapshot).failed] == ["api.waf_attached"]


# --- the audit ledger as a control ------------------------------------------------------------


def test_an_intact_ledger_passes_with_its_size_and_last_signed_head() -> None:
    check = report(compliant_snapshot()).result("ledger.integrity", "audit ledger hub-p1-ledger")
    assert check.status == Status.PASS, check.evidence
    assert check.data["entries"] == 6 and check.data["size"] == 6
    assert check.data["last_signed_head"]["size"] == 6
    assert check.data["first_bad_index"] is None and check.data["findings"] == []
    assert "Cap. 486 DPP4(1)(d)" in " ".join(check.controls)


def test_a_tampered_ledger_fails_at_its_first_bad_index() -> None:
    snapshot = compliant_snapshot()
    snapshot["ledger"] = tampered(snapshot["ledger"], 3)
    result = report(snapshot)
    check = result.result("ledger.integrity", "audit ledger hub-p1-ledger")
    assert check.status == Status.FAIL
    assert "TAMPERED" in check.evidence and "first bad index 3" in check.evidence
    assert check.data["first_bad_index"] == 3
    assert {f["kind"] for f in check.data["findings"]} == {"modified"}
    # the stack is no longer verified, and only the ledger says why
    assert not result.passed
    assert [c.id for c in result.failed] == ["ledger.integrity"]


def test_an_empty_ledger_has_nothing_to_attest_and_entries_without_a_head_fail() -> None:
    snapshot = compliant_snapshot()
    snapshot["ledger"] = {**snapshot["ledger"], "entries": {}, "tree_leaves": {}, "heads": []}
    check = report(snapshot).result("ledger.integrity", "audit ledger hub-p1-ledger")
    assert check.status == Status.NOT_APPLICABLE
    snapshot["ledger"] = {**compliant_snapshot()["ledger"], "heads": []}
    check = report(snapshot).result("ledger.integrity", "audit ledger hub-p1-ledger")
    assert check.status == Status.FAIL and "no signed head" in check.evidence


def test_an_unreadable_ledger_fails_with_the_reason() -> None:
    snapshot = compliant_snapshot()
    snapshot["ledger"] = {"unreadable": "AccessDeniedException: no kms:GetPublicKey"}
    check = report(snapshot).result("ledger.integrity", "audit ledger hub-p1-ledger")
    assert check.status == Status.FAIL and "AccessDeniedException" in check.evidence


# --- backup.plan_coverage ----------------------------------------------------------------


def _backup_check(snapshot: dict[str, Any], expect: Expectations | None = None) -> Any:
    [check] = [c for c in report(snapshot, expect).checks if c.id == "backup.plan_coverage"]
    return check


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b["vault"].update(Locked=False), "no vault lock"),
        (
            lambda b: b["vault"].update(EncryptionKeyArn="arn:aws:kms:x:1:alias/aws/backup"),
            "customer-managed",
        ),
        (lambda b: b["plans"][0]["selected"].pop(0), "no plan selection backs up table"),
        (lambda b: b["plans"][0]["selected"].remove(DATABASE_ARN), f"backs up database {DATABASE}"),
        (lambda b: b["plans"][0]["selected"].remove(f"arn:aws:s3:::{AUDIT}"), f"bucket {AUDIT}"),
        (
            lambda b: b["plans"][0]["plan"]["Rules"].pop(4),
            "no plan rule for data class 'messages'",
        ),
        (
            lambda b: b["plans"][0]["plan"]["Rules"][0].update(Lifecycle={"DeleteAfterDays": 7}),
            "'ledger' keeps recovery points 7 days",
        ),
        (lambda b: b["plans"][0]["plan"]["Rules"].pop(2), "no plan rule for data class 'records'"),
        (lambda b: b.update(vault=None), "no backup vault"),
    ],
)
def test_backup_coverage_fails_when_a_part_is_removed(
    change: Callable[[dict[str, Any]], Any], message: str
) -> None:
    snapshot = compliant_snapshot()
    change(snapshot["backup"])
    check = _backup_check(snapshot)
    assert check.status == "fail" and message in check.evidence, check.evidence


def test_backup_coverage_requires_the_messaging_media_bucket() -> None:
    record = Record()
    record.outputs["messagingMediaBucketName"] = MEDIA
    snapshot = compliant_snapshot()
    missing = _backup_check(snapshot, expectations(record))
    assert missing.status == "fail" and f"backs up bucket {MEDIA}" in missing.evidence
    snapshot["backup"]["plans"][0]["selected"].append(f"arn:aws:s3:::{MEDIA}")
    assert _backup_check(snapshot, expectations(record)).status == "pass"


def test_backup_selection_as_declared_where_the_emulator_has_none() -> None:
    snapshot = compliant_snapshot()
    live = snapshot["backup"]["plans"][0]["selected"]
    snapshot["backup"]["plans"][0]["selected"] = {
        "unreadable": "ResourceNotFoundException: no selections"
    }
    gap = {
        "resource": "backup-selection",
        "type": "aws:backup/selection:Selection",
        "property": "resources",
        "reason": "moto has no backup selections",
    }
    selection = {
        "type": "aws:backup/selection:Selection",
        "name": "backup-selection",
        "id": "plan1:sel",
        "inputs": {"resources": live},
    }
    record = Record(resources=[*Record().resources, selection], gaps=[gap])
    check = _backup_check(snapshot, expectations(record))
    assert check.status == "pass" and "as declared (emulator gap" in check.evidence
    # without the gap, an unreadable selection fails
    assert _backup_check(snapshot).status == "fail"


def test_stack_without_a_vault_fails_backup_coverage() -> None:
    record = Record()
    del record.outputs["backupVaultName"]
    check = _backup_check(compliant_snapshot(), expectations(record))
    assert check.status == "fail" and "not found" in check.evidence
