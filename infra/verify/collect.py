"""Data collection for post-deploy verification: boto3 reads, turned into plain data.

``collect`` reads the live configuration of one stack's resources and returns a
JSON-able snapshot (dicts, lists, strings, numbers; datetimes as ISO strings). It only
*reads* (Describe/Get/List calls that AWS, moto and LocalStack all serve) and never
decides anything; ``infra.verify.evaluate`` does that over the snapshot.

Guarantees:
- configuration AWS reports as absent (no bucket policy, no public access block...)
  becomes ``None``, so rules see "not configured" and fail;
- any other error (access denied, throttling that outlived retries, an endpoint that
  does not answer...) becomes an ``{"unreadable": "<code>: <message>"}`` marker, so a
  check that could not read its input fails and says why, instead of passing or
  aborting the whole run.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from infra.verify.clients import ClientFactory

UNREADABLE = "unreadable"


def unreadable_reason(value: Any) -> str | None:
    """The reason if ``value`` is an unreadable marker, else None."""
    if isinstance(value, dict) and set(value) == {UNREADABLE}:
        return str(value[UNREADABLE])
    return None


def plain(value: Any) -> Any:
    """``value`` with response metadata dropped and datetimes as ISO strings."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def fetch(call: Callable[[], Any], *absent: str, pick: str | None = None) -> Any:
    """Run one read. ``absent`` error codes mean "not configured" (None).

    Args:
        pick: the response key to keep (the whole response, minus metadata, if None).
    """
    try:
        response = call()
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", "Error"))
        if code in absent:
            return None
        message = str(error.response.get("Error", {}).get("Message", ""))
        return {UNREADABLE: f"{code}: {message}".rstrip(": ")}
    except BotoCoreError as error:
        # no answer at all (endpoint unreachable, no credentials...): every check that
        # needed this read fails and says why, rather than the whole run aborting
        return {UNREADABLE: f"{type(error).__name__}: {error}"}
    response = plain(response)
    return response.get(pick) if pick is not None else response


@dataclass(frozen=True)
class LedgerTarget:
    """Where one stack's audit ledger lives: its table, the Object Lock bucket holding
    the signed tree heads, and the KMS key that signs them."""

    table: str
    bucket: str
    signing_key: str


@dataclass(frozen=True)
class Targets:
    """What to read: the physical names and ARNs of one stack's resources."""

    keys: Mapping[str, str] = field(default_factory=dict)  # label -> key ARN
    buckets: Mapping[str, str] = field(default_factory=dict)  # label -> bucket name
    trail: str | None = None  # trail ARN
    tables: Mapping[str, str] = field(default_factory=dict)  # logical -> table name
    user_pool_id: str | None = None
    api_id: str | None = None
    functions: tuple[str, ...] = ()
    log_groups: tuple[str, ...] = ()
    trail_log_group: str | None = None  # where the CIS metric filters must be
    ledger: LedgerTarget | None = None
    # Messaging: the homeserver's database, load balancers and task definition family.
    databases: tuple[str, ...] = ()
    load_balancers: tuple[str, ...] = ()  # ARNs
    task_families: tuple[str, ...] = ()
    backup_vault: str | None = None  # the AWS Backup vault's name
    # False where the deployment record's gap says the emulator holds no backup
    # selections (moto answers ListBackupSelections with NotImplemented, and a server-side
    # traceback each retry): the declared selection stands in, so nothing is asked.
    backup_selections: bool = True


def collect(clients: ClientFactory, targets: Targets, *, workers: int = 8) -> dict[str, Any]:
    """Read everything ``targets`` names; return the plain snapshot evaluation takes.

    Resources are read concurrently (``workers`` threads): each read is a round trip,
    and a stack has about a hundred of them.
    """
    # boto3 clients are thread-safe once made; making them is not, so make them first.
    kms, s3, cloudtrail, dynamodb, cognito, apigateway, wafv2, lambda_, iam, logs = (
        clients(s)
        for s in (
            "kms",
            "s3",
            "cloudtrail",
            "dynamodb",
            "cognito-idp",
            "apigateway",
            "wafv2",
            "lambda",
            "iam",
            "logs",
        )
    )
    tasks: dict[tuple[str, str], Callable[[], Any]] = {}
    for label, arn in targets.keys.items():
        tasks[("keys", label)] = partial(_key, kms, arn)
    for label, name in targets.buckets.items():
        tasks[("buckets", label)] = partial(_bucket, s3, name)
    if targets.trail:
        tasks[("trail", "")] = partial(_trail, cloudtrail, targets.trail)
    for logical, name in targets.tables.items():
        tasks[("tables", logical)] = partial(_table, dynamodb, name)
    if targets.user_pool_id:
        tasks[("user_pool", "")] = partial(_user_pool, cognito, targets.user_pool_id)
    if targets.api_id:
        tasks[("api", "")] = partial(_api, apigateway, wafv2, targets.api_id)
    for name in targets.functions:
        tasks[("functions", name)] = partial(_function, lambda_, iam, name)
    for name in targets.log_groups:
        tasks[("log_groups", name)] = partial(_log_group, logs, name)
    if targets.trail_log_group:
        cloudwatch = clients("cloudwatch")
        tasks[("monitoring", "")] = partial(_monitoring, logs, cloudwatch, targets.trail_log_group)
    if targets.ledger is not None:
        tasks[("ledger", "")] = partial(_ledger, dynamodb, s3, kms, targets.ledger)
    if targets.databases or targets.load_balancers or targets.task_families:
        rds, elbv2, ecs = clients("rds"), clients("elbv2"), clients("ecs")
        for name in targets.databases:
            tasks[("databases", name)] = partial(_database, rds, name)
        for arn in targets.load_balancers:
            tasks[("load_balancers", arn)] = partial(_load_balancer, elbv2, arn)
        for family in targets.task_families:
            tasks[("task_definitions", family)] = partial(_task_definition, ecs, family)

    if targets.backup_vault:
        tasks[("backup", "")] = partial(
            _backup, clients("backup"), targets.backup_vault, selections=targets.backup_selections
        )

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {key: pool.submit(task) for key, task in tasks.items()}
        read = {key: future.result() for key, future in futures.items()}

    snapshot: dict[str, Any] = {
        "keys": {},
        "buckets": {},
        "trail": None,
        "tables": {},
        "user_pool": None,
        "api": None,
        "functions": {},
        "log_groups": {},
        "monitoring": None,
        "ledger": None,
        "databases": {},
        "load_balancers": {},
        "task_definitions": {},
        "backup": None,
    }
    for (area, item), value in read.items():
        if item:
            snapshot[area][item] = value
        else:
            snapshot[area] = value
    return snapshot


# What a plan's selections read as when they are not asked for (``Targets.backup_selections``
# False): unavailable, so evaluation takes the selection the deployment record declares.
SELECTIONS_NOT_READ = {
    UNREADABLE: "not read: the emulator holds no backup selections (the deployment "
    "record's gap keeps the declared ones)"
}


def _backup(backup: Any, vault: str, *, selections: bool = True) -> dict[str, Any]:
    """The vault (key, lock), the plans with a rule writing to it, and their selections'
    resources; with ``selections`` False (the emulator has none, as the record's gap says)
    the selections are not asked for and read as :data:`SELECTIONS_NOT_READ`."""
    plans: Any = fetch(backup.list_backup_plans, pick="BackupPlansList")
    found: Any = plans
    if isinstance(plans, list):
        found = []
        for summary in plans:
            plan_id = summary.get("BackupPlanId")
            document = fetch(
                partial(backup.get_backup_plan, BackupPlanId=plan_id), pick="BackupPlan"
            )
            rules = document.get("Rules") if isinstance(document, dict) else None
            if isinstance(rules, list) and not any(
                r.get("TargetBackupVaultName") == vault for r in rules
            ):
                continue
            found.append(
                {
                    "id": plan_id,
                    "plan": document,
                    "selected": (
                        fetch(partial(_selected_resources, backup, plan_id), pick="Resources")
                        if selections
                        else dict(SELECTIONS_NOT_READ)
                    ),
                }
            )
    return {
        "vault": fetch(
            partial(backup.describe_backup_vault, BackupVaultName=vault),
            "ResourceNotFoundException",
        ),
        "plans": found,
    }


def _selected_resources(backup: Any, plan_id: str) -> dict[str, Any]:
    resources: list[Any] = []
    paginator = backup.get_paginator("list_backup_selections")
    for page in paginator.paginate(BackupPlanId=plan_id):
        for selection in page.get("BackupSelectionsList", []):
            got = backup.get_backup_selection(
                BackupPlanId=plan_id, SelectionId=selection["SelectionId"]
            )
            resources.extend(got.get("BackupSelection", {}).get("Resources") or [])
    return {"Resources": resources}


def _key(kms: Any, arn: str) -> dict[str, Any]:
    metadata = fetch(lambda: kms.describe_key(KeyId=arn), pick="KeyMetadata")
    rotation: Any = None
    spec = metadata.get("KeySpec") if isinstance(metadata, dict) else None
    if spec == "SYMMETRIC_DEFAULT":
        # only symmetric encryption keys have a rotation status; others raise
        rotation = fetch(lambda: kms.get_key_rotation_status(KeyId=arn))
    policy = fetch(lambda: kms.get_key_policy(KeyId=arn, PolicyName="default"), pick="Policy")
    return {"arn": arn, "metadata": metadata, "rotation": rotation, "policy": policy}


def _bucket(s3: Any, name: str) -> dict[str, Any]:
    policy = fetch(lambda: s3.get_bucket_policy(Bucket=name), "NoSuchBucketPolicy", pick="Policy")
    return {
        "name": name,
        "encryption": fetch(
            lambda: s3.get_bucket_encryption(Bucket=name),
            "ServerSideEncryptionConfigurationNotFoundError",
            pick="ServerSideEncryptionConfiguration",
        ),
        "versioning": fetch(lambda: s3.get_bucket_versioning(Bucket=name)),
        "public_access_block": fetch(
            lambda: s3.get_public_access_block(Bucket=name),
            "NoSuchPublicAccessBlockConfiguration",
            pick="PublicAccessBlockConfiguration",
        ),
        "ownership": fetch(
            lambda: s3.get_bucket_ownership_controls(Bucket=name),
            "OwnershipControlsNotFoundError",
            pick="OwnershipControls",
        ),
        "policy": policy,
        "logging": fetch(lambda: s3.get_bucket_logging(Bucket=name)),
        "lifecycle": fetch(
            lambda: s3.get_bucket_lifecycle_configuration(Bucket=name),
            "NoSuchLifecycleConfiguration",
            pick="Rules",
        ),
        "object_lock": fetch(
            lambda: s3.get_object_lock_configuration(Bucket=name),
            "ObjectLockConfigurationNotFoundError",
            pick="ObjectLockConfiguration",
        ),
    }


def _trail(cloudtrail: Any, arn: str) -> dict[str, Any]:
    return {
        "arn": arn,
        "description": fetch(lambda: cloudtrail.get_trail(Name=arn), pick="Trail"),
        "status": fetch(lambda: cloudtrail.get_trail_status(Name=arn)),
        "selectors": fetch(lambda: cloudtrail.get_event_selectors(TrailName=arn)),
        "insights": fetch(
            lambda: cloudtrail.get_insight_selectors(TrailName=arn),
            "InsightNotEnabledException",
            pick="InsightSelectors",
        ),
    }


def _table(dynamodb: Any, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": fetch(lambda: dynamodb.describe_table(TableName=name), pick="Table"),
        "backups": fetch(
            lambda: dynamodb.describe_continuous_backups(TableName=name),
            pick="ContinuousBackupsDescription",
        ),
    }


def _paginate(client: Any, operation: str, key: str, **kwargs: Any) -> Any:
    def pages() -> dict[str, Any]:
        items: list[Any] = []
        for page in client.get_paginator(operation).paginate(**kwargs):
            items.extend(page.get(key, []))
        return {key: items}

    return fetch(pages, pick=key)


def _user_pool(cognito: Any, pool_id: str) -> dict[str, Any]:
    return {
        "id": pool_id,
        "description": fetch(
            lambda: cognito.describe_user_pool(UserPoolId=pool_id), pick="UserPool"
        ),
        "mfa": fetch(lambda: cognito.get_user_pool_mfa_config(UserPoolId=pool_id)),
        "groups": _paginate(cognito, "list_groups", "Groups", UserPoolId=pool_id),
        "providers": _paginate(cognito, "list_identity_providers", "Providers", UserPoolId=pool_id),
        "clients": _pool_clients(cognito, pool_id),
        "resource_servers": _paginate(
            cognito, "list_resource_servers", "ResourceServers", UserPoolId=pool_id, MaxResults=50
        ),
        "provider_details": _provider_details(cognito, pool_id),
    }


def _pool_clients(cognito: Any, pool_id: str) -> Any:
    """Every app client of the pool, described (read/write attributes, flows, scopes)."""
    listed = _paginate(cognito, "list_user_pool_clients", "UserPoolClients", UserPoolId=pool_id)
    if not isinstance(listed, list):
        return listed  # an unreadable marker
    return [
        fetch(
            partial(cognito.describe_user_pool_client, UserPoolId=pool_id, ClientId=c["ClientId"]),
            pick="UserPoolClient",
        )
        for c in listed
    ]


def _provider_details(cognito: Any, pool_id: str) -> Any:
    """Every identity provider of the pool, described (its attribute mapping), by name."""
    listed = _paginate(cognito, "list_identity_providers", "Providers", UserPoolId=pool_id)
    if not isinstance(listed, list):
        return listed
    return {
        str(p["ProviderName"]): fetch(
            partial(
                cognito.describe_identity_provider,
                UserPoolId=pool_id,
                ProviderName=p["ProviderName"],
            ),
            pick="IdentityProvider",
        )
        for p in listed
    }


def _api(apigateway: Any, wafv2: Any, api_id: str) -> dict[str, Any]:
    stages = fetch(lambda: apigateway.get_stages(restApiId=api_id), pick="item")
    web_acls: dict[str, Any] = {}
    if isinstance(stages, list):
        meta = apigateway.meta
        for stage in stages:
            name = str(stage.get("stageName"))
            arn = (
                f"arn:{meta.partition}:apigateway:{meta.region_name}::/restapis/{api_id}"
                f"/stages/{name}"
            )
            web_acls[name] = fetch(
                partial(wafv2.get_web_acl_for_resource, ResourceArn=arn),
                "WAFNonexistentItemException",
                pick="WebACL",
            )
    return {
        "id": api_id,
        "rest_api": fetch(lambda: apigateway.get_rest_api(restApiId=api_id)),
        "resources": _paginate(
            apigateway, "get_resources", "items", restApiId=api_id, embed=["methods"]
        ),
        "authorizers": fetch(lambda: apigateway.get_authorizers(restApiId=api_id), pick="items"),
        "stages": stages,
        "web_acls": web_acls,
    }


def _document(raw: Any) -> Any:
    # IAM documents are URL-encoded JSON on the wire; boto3 usually decodes them already.
    if isinstance(raw, str):
        text = urllib.parse.unquote(raw) if raw.lstrip().startswith("%") else raw
        return json.loads(text)
    return raw


def _role_documents(iam: Any, role_name: str) -> Any:
    documents: dict[str, Any] = {}
    inline = _paginate(iam, "list_role_policies", "PolicyNames", RoleName=role_name)
    if unreadable_reason(inline):
        return inline
    for name in inline or []:
        document = fetch(
            partial(iam.get_role_policy, RoleName=role_name, PolicyName=name), pick="PolicyDocument"
        )
        if unreadable_reason(document):
            return document
        documents[name] = _document(document)
    attached = _paginate(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=role_name)
    if unreadable_reason(attached):
        return attached
    for policy in attached or []:
        arn = policy["PolicyArn"]
        meta = fetch(partial(iam.get_policy, PolicyArn=arn), pick="Policy")
        if unreadable_reason(meta):
            return meta
        version = fetch(
            partial(iam.get_policy_version, PolicyArn=arn, VersionId=meta["DefaultVersionId"]),
            pick="PolicyVersion",
        )
        if unreadable_reason(version):
            return version
        documents[arn] = _document(version["Document"])
    return documents


def _function(lambda_: Any, iam: Any, name: str) -> dict[str, Any]:
    configuration = fetch(lambda: lambda_.get_function_configuration(FunctionName=name))
    role: dict[str, Any] | None = None
    if (
        isinstance(configuration, dict)
        and configuration.get("Role")
        and not unreadable_reason(configuration)
    ):
        role_arn = str(configuration["Role"])
        role_name = role_arn.rsplit("/", 1)[-1]
        trust = fetch(partial(iam.get_role, RoleName=role_name), pick="Role")
        if isinstance(trust, dict) and not unreadable_reason(trust):
            trust = _document(trust.get("AssumeRolePolicyDocument"))
        role = {
            "arn": role_arn,
            "name": role_name,
            "documents": _role_documents(iam, role_name),
            "trust": trust,
        }
    return {
        "name": name,
        "configuration": configuration,
        "policy": fetch(
            lambda: lambda_.get_policy(FunctionName=name),
            "ResourceNotFoundException",
            pick="Policy",
        ),
        "role": role,
    }


def _log_group(logs: Any, name: str) -> Any:
    groups = _paginate(logs, "describe_log_groups", "logGroups", logGroupNamePrefix=name)
    if unreadable_reason(groups):
        return groups
    return next((g for g in groups if g.get("logGroupName") == name), None)


def _monitoring(logs: Any, cloudwatch: Any, log_group: str) -> dict[str, Any]:
    return {
        "log_group": log_group,
        "filters": _paginate(
            logs, "describe_metric_filters", "metricFilters", logGroupName=log_group
        ),
        "alarms": _paginate(cloudwatch, "describe_alarms", "MetricAlarms"),
    }


def _ledger(dynamodb: Any, s3: Any, kms: Any, target: LedgerTarget) -> Any:
    """The audit ledger as its verifier reads it (``hub audit verify --live``): every
    entry and stored leaf hash from the table, every signed head from the bucket (and the
    table's current head), the signing key's public key from KMS; bytes as base64."""
    from app.ledger.checkpoint import KmsHeadSigner
    from app.ledger.errors import LedgerError
    from app.ledger.verify import snapshot_from_deployment

    def read() -> dict[str, Any]:
        snapshot = snapshot_from_deployment(dynamodb, s3, target.table, target.bucket)
        pem = KmsHeadSigner(kms, target.signing_key).public_key_pem()
        leaves = snapshot.tree_leaves
        return {
            "table": target.table,
            "bucket": target.bucket,
            "signing_key": target.signing_key,
            "public_key_pem": pem.decode("ascii"),
            "entries": {str(i): _b64(raw) for i, raw in sorted(snapshot.entries.items())},
            "tree_leaves": None
            if leaves is None
            else {str(i): _b64(h) for i, h in sorted(leaves.items())},
            "heads": [head.to_json() for head in snapshot.heads],
        }

    try:
        return fetch(read)
    except LedgerError as error:
        # a stored head or entry that does not even parse: the ledger cannot be verified
        return {UNREADABLE: f"{type(error).__name__}: {error}"}


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def _database(rds: Any, identifier: str) -> dict[str, Any]:
    """An RDS instance and the values of its parameter groups' parameters (user-set)."""
    instances = fetch(
        lambda: rds.describe_db_instances(DBInstanceIdentifier=identifier),
        "DBInstanceNotFound",
        pick="DBInstances",
    )
    if not isinstance(instances, list) or not instances:
        return {"instance": instances}
    instance = instances[0]
    parameters: dict[str, Any] = {}
    for group in instance.get("DBParameterGroups", []):
        listed = fetch(
            partial(
                _all_pages,
                rds,
                "describe_db_parameters",
                "Parameters",
                DBParameterGroupName=group.get("DBParameterGroupName"),
            )
        )
        if isinstance(listed, list):
            parameters.update({str(p["ParameterName"]): p.get("ParameterValue") for p in listed})
        else:
            parameters = listed
            break
    return {"instance": instance, "parameters": parameters}


def _all_pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    items: list[Any] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(key, []))
    return items


def _load_balancer(elbv2: Any, arn: str) -> dict[str, Any]:
    return {
        "listeners": fetch(
            lambda: _all_pages(elbv2, "describe_listeners", "Listeners", LoadBalancerArn=arn),
            "LoadBalancerNotFound",
        )
    }


def _task_definition(ecs: Any, family: str) -> dict[str, Any]:
    """The latest active revision of the family (what the service runs next)."""
    return {
        "definition": fetch(
            lambda: ecs.describe_task_definition(taskDefinition=family),
            "ClientException",
            pick="taskDefinition",
        )
    }
