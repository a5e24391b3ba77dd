"""The pack: its bindings, the three stacks passing it, mutations caught, CrossGuard wrappers.

``infra.policies.__main__`` is never imported here: building ``PolicyPack`` starts a gRPC
server and blocks. The wrappers it uses are built by ``pack.pulumi_policies`` and are
exercised directly with the argument objects the analyzer would pass; one test runs the
entry point in its own process, as the Pulumi CLI does, and talks to it over loopback gRPC.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import py_compile
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from infra.controls.catalogue import Framework
from infra.controls.result import Status
from infra.mockrun import DeclaredResource
from infra.policies import pack, rules
from infra.policies.pack import (
    BINDINGS,
    ConfigBinding,
    ResourceBinding,
    StackBinding,
    blocking_findings,
    evaluate_stack,
    pulumi_policies,
)

MAIN = Path(pack.__file__).with_name("__main__.py")
STACKS = ["phase1-specialist", "phase2-hospital-authority", "phase3-private-practice"]


# --- the pack's shape ---------------------------------------------------------------------


def test_entry_module_compiles_without_being_imported(tmp_path: Path) -> None:
    py_compile.compile(str(MAIN), cfile=str(tmp_path / "main.pyc"), doraise=True)
    source = MAIN.read_text()
    assert 'PACK_NAME = "hub-hk-health"' in Path(pack.__file__).read_text()
    assert "PolicyPack(" in source and "pulumi_policies()" in source


def test_policy_project_file_uses_the_project_virtualenv() -> None:
    import yaml

    document = yaml.safe_load(MAIN.with_name("PulumiPolicy.yaml").read_text())
    assert document["runtime"]["name"] == "python"
    venv = MAIN.parent / document["runtime"]["options"]["virtualenv"]
    assert venv.resolve() == (MAIN.parents[2] / ".venv").resolve()
    assert document["description"]


def _rule_functions() -> set[Callable[..., Any]]:
    return {
        fn
        for name, fn in inspect.getmembers(rules, inspect.isfunction)
        if fn.__module__ == rules.__name__ and not name.startswith("_")
    }


def test_every_rule_is_bound_exactly_once() -> None:
    bound = [b.rule for b in BINDINGS]
    assert len(bound) == len(set(bound))
    assert set(bound) == _rule_functions()


def test_bindings_carry_controls_and_remediation() -> None:
    names = [b.name for b in BINDINGS]
    assert len(names) == len(set(names))
    for binding in BINDINGS:
        frameworks = {r.framework for r in binding.requirements}
        assert Framework.ISO_27799 in frameworks, binding.name
        assert any(r.ref.startswith("DPP") for r in binding.requirements), binding.name
        assert binding.remediation and binding.description, binding.name
        assert isinstance(binding.enforcement, EnforcementLevel)


def test_bindings_dispatch_on_the_rule_signature() -> None:
    for binding in BINDINGS:
        parameters = list(inspect.signature(binding.rule).parameters)
        if isinstance(binding, ResourceBinding):
            assert parameters[:3] == ["resource_type", "props", "name"], binding.name
        elif isinstance(binding, StackBinding):
            assert parameters == ["resources"], binding.name
        else:
            assert isinstance(binding, ConfigBinding)
            assert parameters == ["config"], binding.name


def test_required_controls_are_mapped() -> None:
    cis = {r.ref for b in BINDINGS for r in b.requirements if r.framework is Framework.CIS_AWS}
    # multi-region trail, validation, trail KMS, key rotation, TLS-only S3, S3 BPA, no *:*
    assert {"3.1", "3.2", "3.5", "3.6", "2.1.1", "2.1.4", "1.16"} <= cis


# --- the three stacks pass ----------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_stack_passes_the_pack(captured_stacks: dict[str, Any], stack: str) -> None:
    captured = captured_stacks[stack]
    findings = evaluate_stack(captured.resources, captured.config)
    assert blocking_findings(findings) == []
    assert [f for f in findings if f.violation] == []
    # Not vacuous: every policy found something to check in the core and passed it (the
    # core federates no identity provider, so there is none to check there); a layer's
    # checks are those of what its phase adds.
    passed = {f.policy for f in findings if f.status is Status.PASS}
    assert passed == LAYER_POLICIES.get(stack, {b.name for b in BINDINGS} - PHASE2_ONLY)


REGION_POLICIES = {"resource-region-is-ap-east-1", "stack-region-is-ap-east-1"}
PHASE2_ONLY = {"cognito-providers-release-placement-claims"}
LAYER_POLICIES = {
    # the identity providers and their app client on the core pool
    "phase2-hospital-authority": REGION_POLICIES
    | PHASE2_ONLY
    | {
        "cognito-app-client-srp-only-with-short-tokens",
        "cognito-client-cannot-write-granting-attributes",
    },
    # its alarm, its switch and the intake clients of the systems it adds on the core pool
    "phase3-private-practice": REGION_POLICIES
    | {
        "cognito-app-client-srp-only-with-short-tokens",
        "cognito-client-cannot-write-granting-attributes",
    },
}


def test_the_hub_with_its_phase_2_layer_passes_the_pack(captured_stacks: dict[str, Any]) -> None:
    captured = captured_stacks["hub"]
    findings = evaluate_stack(captured.resources, captured.config)
    assert blocking_findings(findings) == []
    assert {f.policy for f in findings if f.status is Status.PASS} == {b.name for b in BINDINGS}


def test_stack_rules_see_every_bucket(captured_stacks: dict[str, Any]) -> None:
    captured = captured_stacks["phase1-specialist"]
    buckets = {r.name for r in captured.resources if r.type == rules.BUCKET}
    # shards, their access logs, the audit archive, the web client's site, the homeserver's media
    assert buckets == {
        "storage-shards",
        "storage-access-logs",
        "audit-bucket",
        "web-site",
        "messaging-media",
    }
    findings = evaluate_stack(captured.resources, captured.config)
    for policy in (
        "every-bucket-encrypted-with-customer-kms-key",
        "every-bucket-has-public-access-block",
        "every-bucket-denies-insecure-transport",
    ):
        assert {f.resource_name for f in findings if f.policy == policy} == buckets


# --- a mutated stack is caught ------------------------------------------------------------


def _named(resources: list[DeclaredResource], name: str) -> DeclaredResource:
    return next(r for r in resources if r.name == name)


def _set(name: str, **inputs: Any) -> Callable[[list[DeclaredResource]], None]:
    def mutate(resources: list[DeclaredResource]) -> None:
        _named(resources, name).inputs.update(inputs)

    return mutate


def _drop(name: str) -> Callable[[list[DeclaredResource]], None]:
    def mutate(resources: list[DeclaredResource]) -> None:
        resources.remove(_named(resources, name))

    return mutate


def _edit_policy(
    name: str, edit: Callable[[dict[str, Any]], None]
) -> Callable[[list[DeclaredResource]], None]:
    def mutate(resources: list[DeclaredResource]) -> None:
        resource = _named(resources, name)
        document = json.loads(resource.inputs["policy"])
        edit(document)
        resource.inputs["policy"] = json.dumps(document)

    return mutate


def _widen_shard_access(document: dict[str, Any]) -> None:
    for statement in document["Statement"]:
        if statement.get("Sid") == "ShardObjects":
            statement["Action"] = "s3:*"


def _drop_tls_deny(document: dict[str, Any]) -> None:
    document["Statement"] = [
        s for s in document["Statement"] if s.get("Sid") != "DenyInsecureTransport"
    ]


def _unbind_trust(name: str) -> Callable[[list[DeclaredResource]], None]:
    def mutate(resources: list[DeclaredResource]) -> None:
        resource = _named(resources, name)
        document = json.loads(resource.inputs["assumeRolePolicy"])
        for statement in document["Statement"]:
            statement.pop("Condition", None)
        resource.inputs["assumeRolePolicy"] = json.dumps(document)

    return mutate


def _unselect(
    fragment: str, name: str = "backup-selection"
) -> Callable[[list[DeclaredResource]], None]:
    def mutate(resources: list[DeclaredResource]) -> None:
        selection = _named(resources, name)
        selection.inputs["resources"] = [
            arn for arn in selection.inputs["resources"] if fragment not in str(arn)
        ]

    return mutate


def _shorten_backup_rule(data_class: str, days: int) -> Callable[[list[DeclaredResource]], None]:
    def mutate(resources: list[DeclaredResource]) -> None:
        for rule in _named(resources, "backup-plan").inputs["rules"]:
            if rule["ruleName"] == data_class:
                rule["lifecycle"] = {"deleteAfter": days}

    return mutate


BACKUP_POLICY = "backup-vault-locked-and-plan-covers-data-stores"


# mutation -> (change, the policy that must block it, the resource it names)
MUTATIONS: dict[str, tuple[Callable[[list[DeclaredResource]], None], str, str]] = {
    "rotation off": (
        _set("keys-records", enableKeyRotation=False),
        "kms-key-rotation-enabled",
        "keys-records",
    ),
    "public access block removed": (
        _drop("storage-shards-public-access-block"),
        "every-bucket-has-public-access-block",
        "storage-shards",
    ),
    "public access flag cleared": (
        _set("audit-bucket-public-access-block", blockPublicPolicy=False),
        "bucket-public-access-fully-blocked",
        "audit-bucket-public-access-block",
    ),
    "shard bucket policy removed": (
        _drop("storage-shards-policy"),
        "every-bucket-denies-insecure-transport",
        "storage-shards",
    ),
    "TLS deny dropped": (
        _edit_policy("audit-bucket-policy", _drop_tls_deny),
        "bucket-policy-denies-insecure-transport",
        "audit-bucket-policy",
    ),
    "shards on SSE-S3": (
        _set(
            "storage-shards-encryption",
            rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
        ),
        "every-bucket-encrypted-with-customer-kms-key",
        "storage-shards",
    ),
    "trail validation off": (
        _set("audit-trail", enableLogFileValidation=False),
        "cloudtrail-validated-multi-region-and-kms-encrypted",
        "audit-trail",
    ),
    "table on AWS-owned key": (
        _set("tables-records", serverSideEncryption={"enabled": False}),
        "dynamodb-table-encrypted-with-customer-key",
        "tables-records",
    ),
    "PITR off": (
        _set("tables-ledger", pointInTimeRecovery={"enabled": False}),
        "dynamodb-table-point-in-time-recovery-enabled",
        "tables-ledger",
    ),
    "MFA optional": (
        _set("identity-user-pool", mfaConfiguration="OPTIONAL"),
        "cognito-user-pool-requires-mfa",
        "identity-user-pool",
    ),
    "users may write their institution": (
        _set("identity-web-client", writeAttributes=["email", "custom:institution_id"]),
        "cognito-client-cannot-write-granting-attributes",
        "identity-web-client",
    ),
    "client without declared write attributes": (
        _set("identity-web-client", writeAttributes=None),
        "cognito-client-cannot-write-granting-attributes",
        "identity-web-client",
    ),
    "federated client with a password flow": (
        _set("federation-federated-client", explicitAuthFlows=["ALLOW_USER_SRP_AUTH"]),
        "cognito-client-cannot-write-granting-attributes",
        "federation-federated-client",
    ),
    "provider without the registration number": (
        _set(
            "federation-idp-hospitalauthority",
            attributeMapping={"email": "mail", "custom:hospital_code": "urn:hk:ha:hospital_code"},
        ),
        "cognito-providers-release-placement-claims",
        "federation-idp-hospitalauthority",
    ),
    "federated client cannot write a mapped attribute": (
        _set("federation-federated-client", writeAttributes=["email", "custom:idp_reg_no"]),
        "cognito-providers-release-placement-claims",
        "federation-idp-hospitalauthority",
    ),
    "API TLS downgraded": (
        _set("service-api", securityPolicy="TLS_1_2"),
        "api-enforces-tls13-security-policy",
        "service-api",
    ),
    "Lambda public": (
        _set("service-api-invoke", principal="*"),
        "lambda-not-publicly-invocable",
        "service-api-invoke",
    ),
    "IAM wildcard": (
        _edit_policy("service-role-policy", _widen_shard_access),
        "iam-policy-grants-no-wildcards-on-data-stores",
        "service-role-policy",
    ),
    "service trust unbound": (
        _unbind_trust("service-role"),
        "role-trust-is-bound-to-source",
        "service-role",
    ),
    "audit lifecycle dropped": (
        _drop("audit-lifecycle"),
        "every-audit-bucket-has-a-retention-lifecycle",
        "audit-bucket",
    ),
    "web ACL association dropped": (
        _drop("service-waf-association"),
        "every-api-stage-has-web-acl",
        "service-stage",
    ),
    "Insights off": (
        _set("audit-trail", insightSelectors=None),
        "cloudtrail-records-insights-and-function-events",
        "audit-trail",
    ),
    "CIS 4.10 filter dropped": (
        _drop("monitoring-cis-4-10-security-group-changes-filter"),
        "every-trail-has-cis-metric-alarms",
        "audit-trail",
    ),
    "log group unencrypted": (
        _set("service-api-function-logs", kmsKeyId=None),
        "log-group-encrypted-and-retained",
        "service-api-function-logs",
    ),
    "vault lock removed": (_drop("backup-vault-lock"), BACKUP_POLICY, "backup-vault"),
    "vault on an AWS-managed key": (
        _set("backup-vault", kmsKeyArn="arn:aws:kms:ap-east-1:000000000000:alias/aws/backup"),
        BACKUP_POLICY,
        "backup-vault",
    ),
    "records table not backed up": (_unselect("-records"), BACKUP_POLICY, "backup-vault"),
    "audit bucket not backed up": (_unselect("-audit-"), BACKUP_POLICY, "backup-vault"),
    "messaging database not backed up": (
        _unselect(":db:", "backup-selection-messaging"),
        BACKUP_POLICY,
        "backup-vault",
    ),
    "messaging media not backed up": (
        _unselect("-messaging-media-", "backup-selection-messaging"),
        BACKUP_POLICY,
        "backup-vault",
    ),
    "message backups kept a week": (
        _shorten_backup_rule("messages", 7),
        BACKUP_POLICY,
        "backup-vault",
    ),
    "ledger backups kept a week": (
        _shorten_backup_rule("ledger", 7),
        BACKUP_POLICY,
        "backup-vault",
    ),
    "bucket in another region": (
        _set("storage-shards", region="us-east-1"),
        "resource-region-is-ap-east-1",
        "storage-shards",
    ),
}


ALSO_CAUGHT = {
    "public access flag cleared": {("every-bucket-has-public-access-block", "audit-bucket")},
    "TLS deny dropped": {("every-bucket-denies-insecure-transport", "audit-bucket")},
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_mutated_stack_is_caught(captured_stacks: dict[str, Any], mutation: str) -> None:
    mutate, policy, resource = MUTATIONS[mutation]
    captured = captured_stacks["hub"]
    resources = copy.deepcopy(captured.resources)
    mutate(resources)
    blocking = blocking_findings(evaluate_stack(resources, captured.config))
    caught = {(f.policy, f.resource_name) for f in blocking}
    assert (policy, resource) in caught
    # Nothing unrelated fires: only the mutated resource, or the bucket it belongs to
    # (a resource-level S3 rule and its every-bucket counterpart both see the change).
    assert caught == {(policy, resource)} | ALSO_CAUGHT.get(mutation, set())
    assert all(f.remediation and f.requirements for f in blocking)
    assert all(any(r.framework is Framework.CAP_486 for r in f.requirements) for f in blocking)


def test_stack_config_outside_hong_kong_is_caught(captured_stacks: dict[str, Any]) -> None:
    captured = captured_stacks["phase1-specialist"]
    config = {**captured.config, "aws:region": "ap-southeast-1"}
    blocking = blocking_findings(evaluate_stack(captured.resources, config))
    assert [f.policy for f in blocking] == ["stack-region-is-ap-east-1"]


def test_mutation_does_not_leak_into_the_captured_stack(captured_stacks: dict[str, Any]) -> None:
    captured = captured_stacks["hub"]
    assert _named(captured.resources, "keys-records").inputs["enableKeyRotation"] is True


# --- CrossGuard wrappers ------------------------------------------------------------------

OPTIONS = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
PROVIDER_HK = PolicyProviderResource(
    "pulumi:providers:aws",
    unknown_checking_proxy({"region": "ap-east-1"}),
    "urn:pulumi:s::hub::pulumi:providers:aws::default",
    "default",
)


def _policies() -> dict[str, Any]:
    return {p.name: p for p in pulumi_policies()}


def _resource_args(
    resource_type: str,
    props: dict[str, Any],
    name: str = "r",
    provider: PolicyProviderResource | None = PROVIDER_HK,
) -> ResourceValidationArgs:
    return ResourceValidationArgs(
        resource_type,
        unknown_checking_proxy(props),
        f"urn:pulumi:s::hub::{resource_type}::{name}",
        name,
        OPTIONS,
        provider,
    )


def _policy_resource(resource: DeclaredResource) -> PolicyResource:
    return PolicyResource(
        resource.type,
        unknown_checking_proxy(dict(resource.inputs)),
        resource.urn,
        resource.name,
        OPTIONS,
        PROVIDER_HK,
        None,
        [],
        {},
    )


class Violations(list[tuple[str, str | None]]):
    def __call__(self, message: str, urn: str | None = None) -> None:
        self.append((message, urn))


def test_pulumi_policies_mirror_the_bindings() -> None:
    policies = pulumi_policies()
    assert [p.name for p in policies] == [b.name for b in BINDINGS]
    for policy, binding in zip(policies, BINDINGS, strict=True):
        expected = (
            ResourceValidationPolicy
            if isinstance(binding, ResourceBinding)
            else StackValidationPolicy
        )
        assert isinstance(policy, expected)
        assert policy.enforcement_level is binding.enforcement
        assert policy.remediation_steps == binding.remediation
        cis = [r.ref for r in binding.requirements if r.framework is Framework.CIS_AWS]
        if cis:
            assert policy.framework is not None
            assert policy.framework.reference == ", ".join(cis)
        assert policy.tags == [r.tag for r in binding.requirements]


def test_resource_policy_reports_a_violation_through_crossguard() -> None:
    policy = _policies()["kms-key-rotation-enabled"]
    violations = Violations()
    policy.validate(
        _resource_args(rules.KMS_KEY, {"enableKeyRotation": False}, "keys-records"), violations
    )
    assert len(violations) == 1 and "'keys-records'" in violations[0][0]

    compliant = Violations()
    policy.validate(_resource_args(rules.KMS_KEY, {"enableKeyRotation": True}), compliant)
    assert compliant == []


def test_resource_policy_marks_exempt_resources_not_applicable() -> None:
    policy = _policies()["kms-key-rotation-enabled"]
    args = _resource_args(
        rules.KMS_KEY, {"customerMasterKeySpec": "ECC_NIST_P256", "keyUsage": "SIGN_VERIFY"}
    )
    with pytest.raises(_NotApplicableError):
        policy.validate(args, Violations())


def test_region_policy_checks_the_provider() -> None:
    policy = _policies()["resource-region-is-ap-east-1"]
    elsewhere = PolicyProviderResource(
        "pulumi:providers:aws",
        unknown_checking_proxy({"region": "us-east-1"}),
        "urn:pulumi:s::hub::pulumi:providers:aws::default",
        "default",
    )
    violations = Violations()
    policy.validate(_resource_args(rules.TABLE, {"name": "t"}, provider=elsewhere), violations)
    assert len(violations) == 1 and "us-east-1" in violations[0][0]

    inherits_hong_kong = Violations()
    policy.validate(_resource_args(rules.TABLE, {"name": "t"}), inherits_hong_kong)
    assert inherits_hong_kong == []

    with pytest.raises(_NotApplicableError):  # no provider to check, no region of its own
        policy.validate(_resource_args(rules.TABLE, {"name": "t"}, provider=None), Violations())


def test_captured_stack_passes_through_the_crossguard_wrappers(
    captured_stacks: dict[str, Any],
) -> None:
    """The wrappers over proxied props (as the analyzer passes them) find nothing."""
    resources = (
        captured_stacks["hub"].resources + captured_stacks["phase3-private-practice"].resources
    )
    violations = Violations()
    checked = 0
    for policy in pulumi_policies():
        if isinstance(policy, ResourceValidationPolicy):
            for r in resources:
                try:
                    policy.validate(_resource_args(r.type, dict(r.inputs), r.name), violations)
                    checked += 1
                except _NotApplicableError:
                    pass
        elif policy.name != "stack-region-is-ap-east-1":
            policy.validate(
                StackValidationArgs([_policy_resource(r) for r in resources]), violations
            )
    assert violations == []
    assert checked > 30


def test_stack_policy_reports_the_bucket_urn(captured_stacks: dict[str, Any]) -> None:
    resources = [
        r
        for r in captured_stacks["phase1-specialist"].resources
        if r.name != "storage-shards-policy"
    ]
    violations = Violations()
    _policies()["every-bucket-denies-insecure-transport"].validate(
        StackValidationArgs([_policy_resource(r) for r in resources]), violations
    )
    shards = _named(resources, "storage-shards")
    assert violations == [(violations[0][0], shards.urn)]


def _preview_bucket_pair(policy_document: Any) -> list[PolicyResource]:
    bucket = PolicyResource(
        rules.BUCKET,
        unknown_checking_proxy({"bucket": "shards-123"}),
        "urn:bucket",
        "storage-shards",
        OPTIONS,
        PROVIDER_HK,
        None,
        [],
        {},
    )
    bucket_policy = PolicyResource(
        rules.BUCKET_POLICY,
        unknown_checking_proxy({"bucket": UNKNOWN_STRING_VALUE, "policy": policy_document}),
        "urn:policy",
        "storage-shards-policy",
        OPTIONS,
        PROVIDER_HK,
        None,
        [bucket],
        {"bucket": [bucket]},
    )
    return [bucket, bucket_policy]


def test_preview_unknown_bucket_reference_resolves_through_dependencies() -> None:
    """In a preview a new bucket's id is unknown; the stack view follows the dependency."""
    document = json.dumps(
        {
            "Statement": [
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": ["arn:aws:s3:::shards-123", "arn:aws:s3:::shards-123/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ]
        }
    )
    view = pack.stack_view(_preview_bucket_pair(document))
    results = rules.every_bucket_denies_insecure_transport(view)
    assert [(r.resource, r.status) for r in results] == [("storage-shards", Status.PASS)]


def test_preview_unknown_policy_document_is_left_to_the_analyzer() -> None:
    """An unknown document is not guessed at: pulumi-policy reports it as a preview gap."""
    policy = _policies()["every-bucket-denies-insecure-transport"]
    with pytest.raises(UnknownValueError):
        policy.validate(
            StackValidationArgs(_preview_bucket_pair(UNKNOWN_STRING_VALUE)), Violations()
        )


def test_preview_unknown_bucket_of_a_bucket_policy_is_left_to_the_analyzer() -> None:
    """The TLS deny is judged against the policy's own bucket; while that is unknown the
    resource policy does not guess (the stack policy resolves it through the dependency,
    and pulumi up runs both on the real values)."""
    policy = _policies()["bucket-policy-denies-insecure-transport"]
    document = {"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*"}]}
    args = _resource_args(rules.BUCKET_POLICY, {"bucket": UNKNOWN_STRING_VALUE, "policy": document})
    with pytest.raises(UnknownValueError):
        policy.validate(args, Violations())


def test_config_policy_reads_the_stack_config(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = _policies()["stack-region-is-ap-east-1"]
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"aws:region": "us-east-1"}))
    violations = Violations()
    policy.validate(StackValidationArgs([]), violations)
    assert len(violations) == 1 and "us-east-1" in violations[0][0]

    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"aws:region": "ap-east-1"}))
    compliant = Violations()
    policy.validate(StackValidationArgs([]), compliant)
    assert compliant == []

    monkeypatch.delenv("PULUMI_CONFIG")
    with pytest.raises(_NotApplicableError):
        policy.validate(StackValidationArgs([]), Violations())


# --- the entry point, as the Pulumi CLI runs it ----------------------------------------------


@pytest.fixture
def served_pack() -> Iterator[Any]:
    """``__main__.py`` run in its own process (never imported), as the CLI runs it."""
    import grpc
    from pulumi.runtime.proto import analyzer_pb2_grpc

    env = {**os.environ, "PULUMI_CONFIG": json.dumps({"aws:region": "us-east-1"})}
    process = subprocess.Popen(
        [sys.executable, str(MAIN)], stdout=subprocess.PIPE, env=env, cwd=MAIN.parent
    )
    watchdog = threading.Timer(30, process.kill)  # a hung start must not hang the suite
    watchdog.start()
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        watchdog.cancel()
        process.kill()
        process.wait()


def _struct(values: dict[str, Any]) -> Any:
    from google.protobuf import struct_pb2

    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def test_entry_point_serves_the_pack(served_pack: Any) -> None:
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2

    info = served_pack.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "hub-hk-health"
    assert [p.name for p in info.policies] == [b.name for b in BINDINGS]

    key = analyzer_pb2.AnalyzeRequest(
        type=rules.KMS_KEY,
        name="keys-records",
        urn="urn:pulumi:s::hub::aws:kms/key:Key::keys-records",
        properties=_struct({"enableKeyRotation": False}),
    )
    diagnostics = served_pack.Analyze(key).diagnostics
    assert [d.policyName for d in diagnostics] == ["kms-key-rotation-enabled"]
    assert "'keys-records'" in diagnostics[0].message

    bucket = analyzer_pb2.AnalyzerResource(
        type=rules.BUCKET,
        name="storage-shards",
        urn="urn:bucket",
        properties=_struct({"bucket": "shards-123"}),
    )
    stack = served_pack.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[bucket]))
    found = {(d.policyName, d.urn) for d in stack.diagnostics}
    assert found == {
        ("every-bucket-encrypted-with-customer-kms-key", "urn:bucket"),
        ("every-bucket-has-public-access-block", "urn:bucket"),
        ("every-bucket-denies-insecure-transport", "urn:bucket"),
        ("stack-region-is-ap-east-1", ""),  # PULUMI_CONFIG says us-east-1
    }
