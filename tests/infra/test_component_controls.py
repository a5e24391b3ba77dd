"""Each component's security properties, checked through its outputs under the mock runtime.

The ``check_*`` functions are the controls; each ``test_*`` runs one through
``@pulumi.runtime.test``. ``test_switch_off_*`` removes a control from the program
(by forcing the resource argument that implements it) and shows the same test failing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from app.identity.triggers import ROLE_GROUPS
from infra.components.audit_trail import AuditTrail, AuditTrailArgs
from infra.components.identity import Identity, IdentityArgs
from infra.components.keys import Keys, KeysArgs
from infra.components.monitoring import CIS_ALARMS, Monitoring, MonitoringArgs
from infra.components.shard_storage import ShardStorage, ShardStorageArgs
from infra.components.sharing_service import (
    API_AUTHORIZATION_SCOPES,
    API_BINARY_MEDIA_TYPES,
    API_SECURITY_POLICY,
    WAF_BODY_SIZE_RULE,
    ServiceRole,
    SharingService,
    SharingServiceArgs,
)
from infra.components.tables import TABLE_SPECS, ServiceTables, ServiceTablesArgs
from infra.controls.predicates import client_writable_grants
from infra.mockrun import PreviewMocks, _reset_pulumi_runtime
from infra.stage import AlarmSubscription, Capacity, FederationProvider

ACCOUNT = "111122223333"
PREFIX = "hub-pt"
KEY_ARN = f"arn:aws:kms:ap-east-1:{ACCOUNT}:key/test"


class RecordingPreviewMocks(PreviewMocks):
    """Keeps the inputs of every resource by logical name, for document checks."""

    def inputs(self, name: str) -> dict[str, Any]:
        for args in self.captured:
            if args.name == name:
                return dict(args.inputs)
        raise KeyError(name)

    def names_of_type(self, typ: str) -> list[str]:
        return [a.name for a in self.captured if a.typ == typ]


MOCKS = RecordingPreviewMocks(account_id=ACCOUNT)


@pytest.fixture(autouse=True)
def mock_runtime() -> Iterator[None]:
    MOCKS.captured.clear()
    _reset_pulumi_runtime()
    pulumi.runtime.set_mocks(MOCKS, project="hub", stack="component-tests", preview=False)
    yield


def forcing(cls: type, **forced: Any) -> type:
    """A subclass of a pulumi_aws resource that overrides some constructor arguments."""

    class Forced(cls):  # type: ignore[misc, valid-type]
        def __init__(self, resource_name: str, *args: Any, **kwargs: Any) -> None:
            kwargs.update(forced)
            super().__init__(resource_name, *args, **kwargs)

    return Forced


def declared(factory: Callable[[], Any]) -> None:
    """Declare under the mock runtime and wait until every registration has completed."""

    @pulumi.runtime.test
    def run() -> None:
        factory()

    run()


def statements(policy_json: str) -> list[dict[str, Any]]:
    return list(json.loads(policy_json)["Statement"])


# ---- keys ---------------------------------------------------------------------------


def make_keys() -> Keys:
    return Keys(
        "keys",
        KeysArgs(
            name_prefix=PREFIX,
            region="ap-east-1",
            partition="aws",
            account_id=ACCOUNT,
            service_role_arn=f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-service",
            trail_arn=f"arn:aws:cloudtrail:ap-east-1:{ACCOUNT}:trail/{PREFIX}-trail",
        ),
    )


@pulumi.runtime.test
def test_symmetric_keys_rotate_and_wait_30_days() -> pulumi.Output[None]:
    keys = make_keys()

    def check(values: list[Any]) -> None:
        for rotation, window, spec in zip(values[0::3], values[1::3], values[2::3], strict=True):
            assert spec == "SYMMETRIC_DEFAULT"
            assert rotation is True, "symmetric CMK without rotation"
            assert window == 30

    return pulumi.Output.all(
        *[
            v
            for k in (keys.records_key, keys.audit_key)
            for v in (k.enable_key_rotation, k.deletion_window_in_days, k.customer_master_key_spec)
        ]
    ).apply(check)


@pulumi.runtime.test
def test_signing_key_is_p256_sign_verify() -> pulumi.Output[None]:
    keys = make_keys()

    def check(values: list[Any]) -> None:
        assert values == ["ECC_NIST_P256", "SIGN_VERIFY", 30]

    return pulumi.Output.all(
        keys.signing_key.customer_master_key_spec,
        keys.signing_key.key_usage,
        keys.signing_key.deletion_window_in_days,
    ).apply(check)


@pulumi.runtime.test
def test_key_policies_give_root_no_cryptographic_use() -> pulumi.Output[None]:
    keys = make_keys()

    def check(policies: list[str]) -> None:
        for policy in policies:
            for statement in statements(policy):
                if statement["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}:
                    actions = statement["Action"]
                    actions = [actions] if isinstance(actions, str) else actions
                    assert not {
                        "kms:CreateGrant",
                        "kms:Create*",
                        "kms:*",
                        "kms:Decrypt",
                        "kms:Encrypt",
                        "kms:Sign",
                        "kms:GenerateDataKey",
                    } & set(actions), statement["Sid"]

    return pulumi.Output.all(
        keys.records_key.policy, keys.audit_key.policy, keys.signing_key.policy
    ).apply(check)


@pulumi.runtime.test
def test_service_envelope_use_requires_the_record_context() -> pulumi.Output[None]:
    keys = make_keys()

    def check(policy: str) -> None:
        direct = [
            s
            for s in statements(policy)
            if s["Sid"] == "ServiceEnvelopeEncryptionWithRecordContext"
        ]
        assert direct, "no envelope statement for the service role"
        condition = direct[0]["Condition"]
        assert set(condition["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"]) == {
            "record_id",
            "patient_id",
            "version",
            "institution",
        }
        assert all(v == "false" for v in condition["Null"].values())
        for statement in statements(policy):
            if statement["Principal"] == {"AWS": "*"}:
                assert "kms:CallerAccount" in statement["Condition"]["StringEquals"]

    return keys.records_key.policy.apply(check)


@pulumi.runtime.test
def test_service_uses_the_audit_key_only_for_the_sealed_hash_keys() -> pulumi.Output[None]:
    """Only to seal the audit hashing key and the patient index key, each by its context,
    and through S3 (the audit archive) or SNS (the encrypted security-alarm topic the hub's
    functions publish to); never directly on anything else."""
    keys = make_keys()
    role = f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-service"

    def check(policy: str) -> None:
        for statement in statements(policy):
            if statement["Principal"] != {"AWS": role}:
                continue
            condition = statement["Condition"]["StringEquals"]
            via = condition.get("kms:ViaService", "")
            via_s3 = via.startswith("s3.")
            via_sns = via == "sns.ap-east-1.amazonaws.com"
            purpose = condition.get("kms:EncryptionContext:purpose") in (
                "audit-patient-ref",
                "patient-index-ref",
            )
            assert via_s3 or via_sns or purpose, f"unbound audit key use: {statement['Sid']}"

    return keys.audit_key.policy.apply(check)


@pulumi.runtime.test
def test_cloudtrail_may_use_the_audit_key_only_for_our_trail() -> pulumi.Output[None]:
    keys = make_keys()

    def check(policy: str) -> None:
        trail = [
            s
            for s in statements(policy)
            if s["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
        ]
        assert trail
        for statement in trail:
            assert statement["Condition"]["StringEquals"]["aws:SourceArn"].endswith(
                f":trail/{PREFIX}-trail"
            )

    return keys.audit_key.policy.apply(check)


def test_switch_off_rotation_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws.kms, "Key", forcing(aws.kms.Key, enable_key_rotation=False))
    with pytest.raises(AssertionError, match="without rotation"):
        test_symmetric_keys_rotate_and_wait_30_days()


# ---- shard storage ------------------------------------------------------------------


def make_storage() -> ShardStorage:
    return ShardStorage(
        "storage",
        ShardStorageArgs(
            name_prefix=PREFIX, account_id=ACCOUNT, partition="aws", records_key_arn=KEY_ARN
        ),
    )


def check_public_access_blocked(flags: list[Any]) -> None:
    assert flags and all(f is True for f in flags), f"public access not fully blocked: {flags}"


def test_buckets_block_all_public_access() -> None:
    declared(make_storage)
    names = MOCKS.names_of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert len(names) == len(MOCKS.names_of_type("aws:s3/bucket:Bucket")) == 2
    for name in names:
        inputs = MOCKS.inputs(name)
        check_public_access_blocked(
            [
                inputs.get(k)
                for k in (
                    "blockPublicAcls",
                    "blockPublicPolicy",
                    "ignorePublicAcls",
                    "restrictPublicBuckets",
                )
            ]
        )


def test_shards_are_sse_kms_with_the_records_key_versioned_and_owner_enforced() -> None:
    declared(make_storage)
    rule = MOCKS.inputs("storage-shards-encryption")["rules"][0]
    default = rule["applyServerSideEncryptionByDefault"]
    assert default == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_ARN}
    assert rule["bucketKeyEnabled"] is True
    assert MOCKS.inputs("storage-shards-versioning")["versioningConfiguration"] == {
        "status": "Enabled"
    }
    assert MOCKS.inputs("storage-shards-ownership")["rule"] == {
        "objectOwnership": "BucketOwnerEnforced"
    }
    assert MOCKS.inputs("storage-shards-logging")["targetPrefix"] == "shards/"


def test_shard_policy_denies_plain_http_old_tls_and_foreign_keys() -> None:
    declared(make_storage)
    by_sid = {s["Sid"]: s for s in statements(MOCKS.inputs("storage-shards-policy")["policy"])}
    assert by_sid["DenyInsecureTransport"]["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    assert by_sid["DenyOutdatedTls"]["Condition"] == {"NumericLessThan": {"s3:TlsVersion": "1.2"}}
    assert by_sid["DenyPutWithoutSseKms"]["Effect"] == "Deny"
    assert by_sid["DenyPutWithoutEncryptionHeader"]["Condition"] == {
        "Null": {"s3:x-amz-server-side-encryption": "true"}
    }
    assert by_sid["DenyPutWithAnotherKey"]["Condition"]["StringNotEqualsIfExists"] == {
        "s3:x-amz-server-side-encryption-aws-kms-key-id": KEY_ARN
    }


def test_switch_off_public_access_block_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        aws.s3,
        "BucketPublicAccessBlock",
        forcing(
            aws.s3.BucketPublicAccessBlock, block_public_policy=False, restrict_public_buckets=False
        ),
    )
    with pytest.raises(AssertionError, match="public access not fully blocked"):
        test_buckets_block_all_public_access()


# ---- tables -------------------------------------------------------------------------


@pulumi.runtime.test
def test_tables_use_customer_keys_pitr_and_deletion_protection() -> pulumi.Output[None]:
    tables = ServiceTables(
        "tables",
        ServiceTablesArgs(
            name_prefix=PREFIX, records_key_arn=KEY_ARN, audit_key_arn=KEY_ARN + "-audit"
        ),
    )
    assert set(tables.tables) == set(TABLE_SPECS)

    def check(values: list[Any]) -> None:
        for sse, pitr, protection, billing in zip(*[iter(values)] * 4, strict=True):
            assert sse["enabled"] is True and sse["kms_key_arn"].startswith(KEY_ARN)
            assert pitr["enabled"] is True, "PITR off"
            assert protection is True
            assert billing == "PAY_PER_REQUEST"

    return pulumi.Output.all(
        *[
            v
            for t in tables.tables.values()
            for v in (
                t.server_side_encryption,
                t.point_in_time_recovery,
                t.deletion_protection_enabled,
                t.billing_mode,
            )
        ]
    ).apply(check)


def test_switch_off_pitr_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        aws.dynamodb,
        "Table",
        forcing(aws.dynamodb.Table, point_in_time_recovery={"enabled": False}),
    )
    with pytest.raises(AssertionError, match="PITR off"):
        test_tables_use_customer_keys_pitr_and_deletion_protection()


# ---- audit trail --------------------------------------------------------------------


def make_trail(retention: int = 7) -> AuditTrail:
    return AuditTrail(
        "audit",
        AuditTrailArgs(
            name_prefix=PREFIX,
            region="ap-east-1",
            partition="aws",
            account_id=ACCOUNT,
            audit_key_arn=KEY_ARN,
            retention_years=retention,
            access_log_bucket="logs",
            shard_bucket_arn="arn:aws:s3:::shards",
            table_arns=["arn:aws:dynamodb:t1"],
        ),
    )


@pulumi.runtime.test
def test_trail_is_multi_region_validated_and_encrypted() -> pulumi.Output[None]:
    audit = make_trail()

    def check(values: list[Any]) -> None:
        multi, global_events, validation, kms, logging = values
        assert multi is True and global_events is True
        assert validation is True, "log file validation off"
        assert kms == KEY_ARN
        assert logging is True

    t = audit.trail
    return pulumi.Output.all(
        t.is_multi_region_trail,
        t.include_global_service_events,
        t.enable_log_file_validation,
        t.kms_key_id,
        t.enable_logging,
    ).apply(check)


@pulumi.runtime.test
def test_trail_records_data_events_on_shards_and_tables() -> pulumi.Output[None]:
    audit = make_trail()

    def check(selectors: list[dict[str, Any]]) -> None:
        fields = {s["name"]: {f["field"]: f for f in s["field_selectors"]} for s in selectors}
        assert fields["shard-object-events"]["resources.ARN"]["starts_withs"] == [
            "arn:aws:s3:::shards/"
        ]
        assert fields["service-table-events"]["resources.ARN"]["equals"] == ["arn:aws:dynamodb:t1"]
        assert fields["management-events"]["eventCategory"]["equals"] == ["Management"]

    return audit.trail.advanced_event_selectors.apply(check)  # type: ignore[arg-type]


def test_trail_bucket_locks_objects_in_compliance_mode() -> None:
    declared(lambda: make_trail(retention=9))
    bucket = MOCKS.inputs("audit-bucket")
    assert bucket["objectLockEnabled"] is True
    lock = MOCKS.inputs("audit-object-lock")
    assert lock["rule"] == {"defaultRetention": {"mode": "COMPLIANCE", "years": 9}}
    sids = {s["Sid"] for s in statements(MOCKS.inputs("audit-bucket-policy")["policy"])}
    assert {"DenyInsecureTransport", "CloudTrailAclCheck", "CloudTrailWrite"} <= sids
    group = MOCKS.inputs("audit-log-group")
    assert group["kmsKeyId"] == KEY_ARN and group["retentionInDays"] >= 9 * 365


def test_switch_off_trail_validation_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        aws.cloudtrail, "Trail", forcing(aws.cloudtrail.Trail, enable_log_file_validation=False)
    )
    with pytest.raises(AssertionError, match="validation off"):
        test_trail_is_multi_region_validated_and_encrypted()


# ---- identity -----------------------------------------------------------------------


def make_identity(
    federation: tuple[FederationProvider, ...] = (), self_registration: bool = False
) -> Identity:
    return Identity(
        "identity",
        IdentityArgs(
            name_prefix=PREFIX,
            region="ap-east-1",
            partition="aws",
            account_id=ACCOUNT,
            phase=2,
            self_registration=self_registration,
            callback_urls=["https://app.example/cb"],
            register_table_name="reg",
            register_table_arn="arn:aws:dynamodb:ap-east-1:1:table/reg",
            institutions_table_name="inst",
            institutions_table_arn="arn:aws:dynamodb:ap-east-1:1:table/inst",
            audit_key_arn=KEY_ARN,
            lambda_bundle="build/lambda.zip",
            log_retention_days=365,
            federation=federation,
            oidc_client_secrets={"Oidc": pulumi.Output.secret("synthetic")},
        ),
    )


@pulumi.runtime.test
def test_user_pool_requires_mfa_and_strong_passwords() -> pulumi.Output[None]:
    pool = make_identity().user_pool

    def check(values: list[Any]) -> None:
        mfa, totp, password, add_ons, deletion, tier = values
        assert mfa == "ON", f"MFA is {mfa}"
        assert totp["enabled"] is True
        assert password["minimum_length"] >= 14
        assert all(
            password[k]
            for k in (
                "require_lowercase",
                "require_uppercase",
                "require_numbers",
                "require_symbols",
            )
        )
        assert add_ons["advanced_security_mode"] == "ENFORCED"
        assert deletion == "ACTIVE"
        assert tier == "PLUS"

    return pulumi.Output.all(
        pool.mfa_configuration,
        pool.software_token_mfa_configuration,
        pool.password_policy,
        pool.user_pool_add_ons,
        pool.deletion_protection,
        pool.user_pool_tier,
    ).apply(check)


@pulumi.runtime.test
def test_user_pool_attributes_and_triggers() -> pulumi.Output[None]:
    identity = make_identity()

    def check(values: list[Any]) -> None:
        schemas, lambda_config = values
        assert {s["name"] for s in schemas} == {
            "mchk_reg_no",
            "institution_id",
            "specialty",
            "idp_reg_no",
            "hospital_code",
            "idp_groups",
        }
        # What providers write at each sign-in must be mutable (Cognito rewrites it).
        assert all(s["mutable"] for s in schemas if s["name"].startswith(("idp_", "hospital")))
        assert lambda_config["pre_sign_up"] and lambda_config["pre_token_generation_config"]

    return pulumi.Output.all(identity.user_pool.schemas, identity.user_pool.lambda_config).apply(
        check
    )


def test_role_groups_and_trigger_permissions() -> None:
    declared(make_identity)
    groups = {
        MOCKS.inputs(n)["name"] for n in MOCKS.names_of_type("aws:cognito/userGroup:UserGroup")
    }
    # exactly the roles the service recognises in a token's groups
    assert groups == set(ROLE_GROUPS)
    permissions = MOCKS.names_of_type("aws:lambda/permission:Permission")
    assert len(permissions) == 2
    for name in permissions:
        permission = MOCKS.inputs(name)
        assert permission["principal"] == "cognito-idp.amazonaws.com"
        assert permission["sourceArn"]


@pulumi.runtime.test
def test_app_client_uses_code_flow_short_tokens_and_hides_users() -> pulumi.Output[None]:
    client = make_identity().client

    def check(values: list[Any]) -> None:
        flows, secret, prevent, access, units, auth_flows = values
        assert flows == ["code"] and secret is False
        assert prevent == "ENABLED"
        assert access <= 60 and units["access_token"] == "minutes"
        assert "ALLOW_USER_PASSWORD_AUTH" not in auth_flows

    return pulumi.Output.all(
        client.allowed_oauth_flows,
        client.generate_secret,
        client.prevent_user_existence_errors,
        client.access_token_validity,
        client.token_validity_units,
        client.explicit_auth_flows,
    ).apply(check)


FEDERATION = (
    FederationProvider(
        None,
        "HospitalAuthority",
        "SAML",
        metadata_url="https://idp.example/metadata",
        hospital_codes=(("VGH", "victoria-general"),),
        group_roles=(("HA-Clinician", "doctor"),),
    ),
    FederationProvider(
        "victoria-general", "Oidc", "OIDC", issuer="https://login.example", client_id="c"
    ),
)


@pulumi.runtime.test
def test_federation_declares_each_provider_with_attribute_mapping() -> pulumi.Output[None]:
    """Each provider's mapping carries what placing its users needs; the providers sign in
    through the federated client only."""
    identity = make_identity(federation=FEDERATION)
    assert identity.federated_client is not None

    def check(values: list[Any]) -> None:
        native, federated, write = values
        assert native == ["COGNITO"]
        assert federated == ["HospitalAuthority", "Oidc"]
        mappings = {
            MOCKS.inputs(n)["providerName"]: MOCKS.inputs(n)["attributeMapping"]
            for n in MOCKS.names_of_type("aws:cognito/identityProvider:IdentityProvider")
        }
        assert mappings["HospitalAuthority"] == {
            "email": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
            "custom:idp_reg_no": "urn:hk:mchk:reg_no",
            "custom:hospital_code": "urn:hk:ha:hospital_code",
            "custom:idp_groups": "http://schemas.xmlsoap.org/claims/Group",
        }
        assert mappings["Oidc"] == {"email": "email", "custom:idp_reg_no": "mchk_reg_no"}
        # Cognito requires the client users federate through to write what is mapped.
        assert set(write) == {a for m in mappings.values() for a in m}

    return pulumi.Output.all(
        identity.client.supported_identity_providers,
        identity.federated_client.supported_identity_providers,
        identity.federated_client.write_attributes,
    ).apply(check)


@pulumi.runtime.test
def test_no_client_lets_users_write_granting_attributes() -> pulumi.Output[None]:
    """The native client's users may write contact details only; the federated client's
    tokens cannot call UpdateUserAttributes at all (no password flow, no admin scope)."""
    identity = make_identity(federation=FEDERATION)
    assert identity.federated_client is not None
    native, federated = identity.client, identity.federated_client

    def check(values: list[Any]) -> None:
        n_write, n_flows, n_scopes, f_write, f_flows, f_scopes = values
        assert client_writable_grants(n_write, n_flows, n_scopes) == [], (
            f"native client lets users write {n_write}"
        )
        assert client_writable_grants(f_write, f_flows, f_scopes) is None, (
            f"federated client tokens can write {f_write}"
        )

    return pulumi.Output.all(
        native.write_attributes,
        native.explicit_auth_flows,
        native.allowed_oauth_scopes,
        federated.write_attributes,
        federated.explicit_auth_flows,
        federated.allowed_oauth_scopes,
    ).apply(check)


@pytest.mark.parametrize(
    "forced",
    [
        {"write_attributes": ["email", "custom:institution_id"]},
        {"write_attributes": None},  # undeclared: Cognito lets users write every attribute
        {"explicit_auth_flows": ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]},
    ],
)
def test_switch_off_client_attribute_authority_is_caught(
    monkeypatch: pytest.MonkeyPatch, forced: dict[str, Any]
) -> None:
    """Forcing either client to let its users write a granting attribute fails the test
    (a password flow on the federated client gives its tokens the admin scope)."""
    monkeypatch.setattr(
        aws.cognito, "UserPoolClient", forcing(aws.cognito.UserPoolClient, **forced)
    )
    with pytest.raises(AssertionError, match=r"lets users write|tokens can write"):
        test_no_client_lets_users_write_granting_attributes()


def test_switch_off_mfa_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        aws.cognito, "UserPool", forcing(aws.cognito.UserPool, mfa_configuration="OPTIONAL")
    )
    with pytest.raises(AssertionError, match="MFA is OPTIONAL"):
        test_user_pool_requires_mfa_and_strong_passwords()


# ---- sharing service ----------------------------------------------------------------


def make_service(waf: bool = False) -> SharingService:
    role = ServiceRole("service", PREFIX, ACCOUNT)
    tables = {k: f"arn:aws:dynamodb:ap-east-1:{ACCOUNT}:table/{PREFIX}-{k}" for k in TABLE_SPECS}
    return SharingService(
        "service",
        SharingServiceArgs(
            name_prefix=PREFIX,
            region="ap-east-1",
            partition="aws",
            account_id=ACCOUNT,
            phase=3,
            stack="test",
            role=role.role,
            capacity=Capacity(10, 25.0, 50),
            waf=waf,
            lambda_bundle="build/lambda.zip",
            self_registration=True,
            table_names={k: f"{PREFIX}-{k}" for k in TABLE_SPECS},
            table_arns=tables,
            shard_bucket_name="shards",
            shard_bucket_arn="arn:aws:s3:::shards",
            checkpoint_bucket_name="audit",
            checkpoint_bucket_arn="arn:aws:s3:::audit",
            records_key_arn=KEY_ARN,
            audit_key_arn=KEY_ARN + "-audit",
            signing_key_arn=KEY_ARN + "-sign",
            user_pool_id="pool",
            user_pool_arn="arn:aws:cognito-idp:ap-east-1:1:userpool/pool",
            user_pool_client_id="client",
            user_pool_federated_client_id="federated-client",
            issuer="https://issuer",
            log_retention_days=365,
        ),
    )


@pulumi.runtime.test
def test_api_is_tls13_strict_regional() -> pulumi.Output[None]:
    api = make_service().api

    def check(values: list[Any]) -> None:
        policy, mode, endpoint = values
        assert policy == API_SECURITY_POLICY, f"API TLS policy is {policy}"
        assert mode == "STRICT"
        assert endpoint["types"] == "REGIONAL"

    return pulumi.Output.all(
        api.security_policy, api.endpoint_access_mode, api.endpoint_configuration
    ).apply(check)


def test_every_method_but_health_needs_a_cognito_access_token() -> None:
    declared(make_service)
    methods = [MOCKS.inputs(n) for n in MOCKS.names_of_type("aws:apigateway/method:Method")]
    assert len(methods) == 3
    for name in MOCKS.names_of_type("aws:apigateway/method:Method"):
        method = MOCKS.inputs(name)
        if name == "service-health-method":
            assert method["authorization"] == "NONE" and method["httpMethod"] == "GET"
        else:
            assert method["authorization"] == "COGNITO_USER_POOLS", name
            # SRP sign-in's scope and the code flow's: both kinds of access token pass
            assert method["authorizationScopes"] == list(API_AUTHORIZATION_SCOPES)
            assert {"aws.cognito.signin.user.admin", "openid"} <= set(API_AUTHORIZATION_SCOPES)
    settings = MOCKS.inputs("service-throttling")["settings"]
    assert settings["throttlingRateLimit"] == 25.0
    assert settings["throttlingBurstLimit"] == 50
    assert settings["dataTraceEnabled"] is False
    stage = MOCKS.inputs("service-stage")
    assert stage["accessLogSettings"]["destinationArn"]
    assert MOCKS.inputs("service-access-logs")["kmsKeyId"] == KEY_ARN + "-audit"


def test_function_is_invocable_only_by_this_api() -> None:
    declared(make_service)
    permission = MOCKS.inputs("service-api-invoke")
    assert permission["principal"] == "apigateway.amazonaws.com"
    assert permission["sourceArn"].endswith("/*/*")
    function = MOCKS.inputs("service-api-function")
    assert function["reservedConcurrentExecutions"] == 10
    assert function["tracingConfig"] == {"mode": "Active"}


def test_service_role_has_no_wildcard_data_actions_and_cannot_delete_ledger() -> None:
    declared(make_service)
    policy = statements(MOCKS.inputs("service-role-policy")["policy"])
    for statement in policy:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert "*" not in action, action
    ledger = next(s for s in policy if s["Sid"] == "LedgerAppendOnly")
    assert "dynamodb:DeleteItem" not in ledger["Action"]
    others = next(s for s in policy if s["Sid"] == "ServiceTables")
    assert not any("ledger" in str(r) for r in others["Resource"])
    sealed = next(s for s in policy if s["Sid"] == "AuditHashKeySealedByKms")
    assert sealed["Condition"]["StringEquals"] == {
        "kms:EncryptionContext:purpose": "audit-patient-ref"
    }
    index_key = next(s for s in policy if s["Sid"] == "PatientIndexKeySealedByKms")
    assert index_key["Condition"]["StringEquals"] == {
        "kms:EncryptionContext:purpose": "patient-index-ref"
    }
    envelope = next(s for s in policy if s["Sid"] == "RecordEnvelopeKeys")
    assert "kms:EncryptionContextKeys" in envelope["Condition"]["ForAllValues:StringEquals"]


def test_waf_guards_the_stage_when_enabled() -> None:
    declared(lambda: make_service(waf=True))
    acl = MOCKS.inputs("service-waf")
    rules = {r["name"]: r for r in acl["rules"]}
    assert rules["per-ip-rate-limit"]["statement"]["rateBasedStatement"]["limit"] > 0
    assert "AWSManagedRulesCommonRuleSet" in rules
    assert MOCKS.inputs("service-waf-association")["resourceArn"]
    # Only the common rule set's body-size rule counts; every other rule still blocks.
    common = rules["AWSManagedRulesCommonRuleSet"]["statement"]["managedRuleGroupStatement"]
    assert common["ruleActionOverrides"] == [
        {"name": "SizeRestrictions_BODY", "actionToUse": {"count": {}}}
    ]
    assert "scopeDownStatement" not in common
    # ...and our own rule blocks bodies over 8 KB outside the record-upload routes.
    own = rules[WAF_BODY_SIZE_RULE]
    assert own["action"] == {"block": {}}
    assert own["priority"] > rules["AWSManagedRulesCommonRuleSet"]["priority"]


def test_binary_media_types_cover_the_binary_record_types() -> None:
    from fnmatch import fnmatchcase

    from app.content import ALLOWED_CONTENT_TYPES, FHIR_JSON

    declared(make_service)
    binary = MOCKS.inputs("service-api")["binaryMediaTypes"]
    assert binary == list(API_BINARY_MEDIA_TYPES)
    for content_type in ALLOWED_CONTENT_TYPES - {FHIR_JSON, "text/plain"}:
        assert any(fnmatchcase(content_type, t) for t in binary), content_type
    assert not any(fnmatchcase(FHIR_JSON, t) for t in binary)  # FHIR JSON stays text


def test_switch_off_api_tls_policy_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        aws.apigateway,
        "RestApi",
        forcing(aws.apigateway.RestApi, security_policy="TLS_1_0", endpoint_access_mode=None),
    )
    with pytest.raises(AssertionError, match="API TLS policy is TLS_1_0"):
        test_api_is_tls13_strict_regional()


# ---- monitoring ---------------------------------------------------------------------


def test_cis_alarms_notify_an_encrypted_topic() -> None:
    declared(
        lambda: Monitoring(
            "monitoring",
            MonitoringArgs(
                name_prefix=PREFIX,
                account_id=ACCOUNT,
                log_group_name="/hub/trail",
                audit_key_arn=KEY_ARN,
                subscription=AlarmSubscription("email", "sec@hub.example"),
            ),
        )
    )
    topic = MOCKS.inputs("monitoring-alarms")
    assert topic["kmsMasterKeyId"] == KEY_ARN
    filters = MOCKS.names_of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")
    alarms = MOCKS.names_of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert len(filters) == len(alarms) == len(CIS_ALARMS) == 15
    for name in alarms:
        assert MOCKS.inputs(name)["alarmActions"], name


# ---- shard storage: browsers --------------------------------------------------------


def test_shard_cors_allows_only_the_hubs_origins() -> None:
    origins = ("https://app.hub.example", "http://localhost:8000")
    declared(
        lambda: ShardStorage(
            "storage",
            ShardStorageArgs(
                name_prefix=PREFIX,
                account_id=ACCOUNT,
                partition="aws",
                records_key_arn=KEY_ARN,
                web_origins=origins,
            ),
        )
    )
    [rule] = MOCKS.inputs("storage-shards-cors")["corsRules"]
    assert sorted(rule["allowedOrigins"]) == sorted(origins)
    assert "*" not in rule["allowedOrigins"]
    assert sorted(rule["allowedMethods"]) == ["GET", "PUT"]
    assert "x-amz-checksum-crc64nvme" in rule["allowedHeaders"]
    assert "*" not in rule["allowedHeaders"]


def test_without_web_origins_the_shard_bucket_has_no_cors_rule() -> None:
    declared(make_storage)
    assert MOCKS.names_of_type("aws:s3/bucketCorsConfiguration:BucketCorsConfiguration") == []
