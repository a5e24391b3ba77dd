"""What one stack must look like: the resources to read and what each must be.

``expectations_from_record`` combines a deployment record (outputs name the resources;
resources and gaps say where a declared value stands in for a live one) with the
stack's stage (phase, audit retention, federated providers, WAF, API throttling) into
:class:`Expectations`. Pure: no AWS calls.

Guarantees: every resource the record's outputs name is expected, so one the live
deployment lacks fails its checks rather than passing by omission.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from infra.verify import record as record_fields
from infra.verify.baseline import OPERATIONAL_LOG_MIN_DAYS
from infra.verify.collect import LedgerTarget, Targets
from infra.verify.model import DeploymentRecordLike
from infra.verify.record import Declared

KEY_OUTPUTS = {
    "records": "recordsKeyArn",
    "audit": "auditKeyArn",
    "signing": "signingKeyArn",
    "messaging": "messagingKeyArn",
}
BUCKET_OUTPUTS = {
    "shard": "shardBucketName",
    "access_log": "accessLogBucketName",
    "audit": "auditBucketName",
    "messaging_media": "messagingMediaBucketName",
    "web": "webBucketName",
}
# Resources of the stack its functions' roles may name (besides keys, buckets, tables...).
ARN_OUTPUTS = (
    "securityTopicArn",
    "notificationTopicArn",
    "outboxDeadLetterQueueArn",
    "messagingAppserviceSecretArn",
)


@dataclass(frozen=True)
class Expectations:
    stack: str
    phase: int
    region: str
    partition: str
    account_id: str
    keys: dict[str, str]  # label -> ARN
    buckets: dict[str, str]  # label -> name
    trail_arn: str | None
    tables: dict[str, str]  # logical -> name
    user_pool_id: str | None
    api_id: str | None
    functions: tuple[str, ...]
    log_groups: dict[str, int]  # name -> minimum retention days
    audit_retention_years: int
    federation: dict[str, str]  # provider name -> SAML/OIDC
    # provider name -> the claims placing its users needs (app.identity.federation)
    provider_claims: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Community-care intake: the app client ids of the stack's intakeClients output.
    intake_client_ids: tuple[str, ...] = ()
    waf_required: bool = False
    throttle: tuple[float, int] | None = None  # (rate per second, burst) from the stage
    declared_bucket_policies: dict[str, Declared] = field(default_factory=dict)
    declared_api_security_policy: Declared | None = None
    trail_log_group: str | None = None
    ledger: LedgerTarget | None = None
    # Messaging: the homeserver's database, its balancers, its task definition family.
    databases: tuple[str, ...] = ()
    load_balancers: tuple[str, ...] = ()
    task_families: tuple[str, ...] = ()
    other_arns: tuple[str, ...] = ()
    backup_vault: str | None = None
    declared_backup_selection: Declared | None = None
    # database physical name -> its declared key, where the key is on another emulator
    declared_database_keys: dict[str, Declared] = field(default_factory=dict)

    def targets(self) -> Targets:
        return Targets(
            keys=self.keys,
            buckets=self.buckets,
            trail=self.trail_arn,
            tables=self.tables,
            user_pool_id=self.user_pool_id,
            api_id=self.api_id,
            functions=self.functions,
            log_groups=tuple(self.log_groups),
            trail_log_group=self.trail_log_group,
            ledger=self.ledger,
            databases=self.databases,
            load_balancers=self.load_balancers,
            task_families=self.task_families,
            backup_vault=self.backup_vault,
            # the record's gap says the emulator has no selections: do not ask for them
            backup_selections=self.declared_backup_selection is None,
        )

    def bucket_arn(self, name: str) -> str:
        return f"arn:{self.partition}:s3:::{name}"

    def database_arn(self, identifier: str) -> str:
        return f"arn:{self.partition}:rds:{self.region}:{self.account_id}:db:{identifier}"

    def function_arn(self, name: str) -> str:
        return f"arn:{self.partition}:lambda:{self.region}:{self.account_id}:function:{name}"

    def log_group_arn(self, name: str) -> str:
        return f"arn:{self.partition}:logs:{self.region}:{self.account_id}:log-group:{name}"

    def user_pool_arn(self) -> str:
        return (
            f"arn:{self.partition}:cognito-idp:{self.region}:{self.account_id}:userpool/"
            f"{self.user_pool_id}"
        )


def expectations_from_record(
    record: DeploymentRecordLike,
    *,
    phase: int,
    audit_retention_years: int,
    federation: Mapping[str, str],
    provider_claims: Mapping[str, Sequence[str]] | None = None,
    waf: bool = False,
    throttle: tuple[float, int] | None = None,
) -> Expectations:
    """What ``record``'s stack must look like, given the stage's phase, audit retention,
    federated providers (name -> ``SAML``/``OIDC``), WAF feature and API throttling
    (rate per second, burst)."""
    outputs = record.outputs
    keys = {label: str(outputs[o]) for label, o in KEY_OUTPUTS.items() if outputs.get(o)}
    reference = next(iter(keys.values()), "arn:aws:kms:ap-east-1:000000000000:key/none")
    arn_parts = reference.split(":")
    partition, region, account_id = arn_parts[1], arn_parts[3], arn_parts[4]
    buckets = {label: str(outputs[o]) for label, o in BUCKET_OUTPUTS.items() if outputs.get(o)}
    tables = {str(k): str(v) for k, v in dict(outputs.get("tableNames") or {}).items()}

    functions = list(record_fields.physical_names(record, record_fields.FUNCTION))
    if outputs.get("functionName") and str(outputs["functionName"]) not in functions:
        functions.insert(0, str(outputs["functionName"]))

    log_groups: dict[str, int] = {}
    for name in record_fields.physical_names(record, record_fields.LOG_GROUP):
        log_groups[name] = OPERATIONAL_LOG_MIN_DAYS
    for function in functions:
        log_groups.setdefault(f"/aws/lambda/{function}", OPERATIONAL_LOG_MIN_DAYS)
    if outputs.get("trailLogGroupName"):
        # the trail's copy of the audit events is kept as long as the audit itself
        log_groups[str(outputs["trailLogGroupName"])] = max(
            OPERATIONAL_LOG_MIN_DAYS, audit_retention_years * 365
        )

    api_id = str(outputs["apiId"]) if outputs.get("apiId") else None
    ledger = None
    if tables.get("ledger") and buckets.get("audit") and keys.get("signing"):
        # the ledger's heads are archived in the Object Lock audit bucket (app/ledger)
        ledger = LedgerTarget(tables["ledger"], buckets["audit"], keys["signing"])
    return Expectations(
        stack=record.stack,
        phase=phase,
        region=str(outputs.get("region") or region),
        partition=partition,
        account_id=account_id,
        keys=keys,
        buckets=buckets,
        trail_arn=str(outputs["trailArn"]) if outputs.get("trailArn") else None,
        tables=tables,
        user_pool_id=str(outputs["userPoolId"]) if outputs.get("userPoolId") else None,
        api_id=api_id,
        functions=tuple(functions),
        log_groups=log_groups,
        audit_retention_years=audit_retention_years,
        federation=dict(federation),
        provider_claims={k: tuple(v) for k, v in (provider_claims or {}).items()},
        intake_client_ids=tuple(
            str(c["clientId"]) for c in (outputs.get("intakeClients") or []) if c.get("clientId")
        ),
        waf_required=waf,
        throttle=throttle,
        declared_bucket_policies=record_fields.declared_bucket_policies(record, buckets.values()),
        declared_api_security_policy=record_fields.declared_security_policy(record, api_id),
        trail_log_group=(
            str(outputs["trailLogGroupName"]) if outputs.get("trailLogGroupName") else None
        ),
        ledger=ledger,
        databases=tuple(record_fields.physical_names(record, record_fields.DB_INSTANCE)),
        load_balancers=tuple(record_fields.physical_names(record, record_fields.LOAD_BALANCER)),
        task_families=tuple(
            str(record_fields.declared_inputs(r).get("family"))
            for r in record_fields.resources_of(record, record_fields.TASK_DEFINITION)
            if record_fields.declared_inputs(r).get("family")
        ),
        other_arns=tuple(str(outputs[o]) for o in ARN_OUTPUTS if outputs.get(o)),
        backup_vault=str(outputs["backupVaultName"]) if outputs.get("backupVaultName") else None,
        declared_backup_selection=record_fields.declared_backup_selection(record),
        declared_database_keys=record_fields.declared_database_keys(record),
    )
