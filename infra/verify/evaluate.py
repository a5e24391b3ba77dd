"""Evaluation: every post-deploy check over a collected snapshot, area by area.

``evaluate`` hands each part of a snapshot (from ``infra.verify.collect``) to its rule
in ``infra.verify.rules`` with what the stack must be (``infra.verify.expectations``)
and the fixed baseline (``infra.verify.baseline``), and collects one result per (check,
resource) (``infra.verify.results``). Pure: no AWS calls, testable on plain data.

Declared values stand in for live ones in exactly three places, each only where the
deployment record carries a gap for them, and the evidence then says "as declared
(emulator gap: ...)": API Gateway's TLS security policy when the live API does not
report one (moto does not store it), a bucket policy the emulator could not hand
to moto whole (moto would enforce every Condition as a deny, so it holds at most the
unconditional statements), and the resources of a backup selection when selections
cannot be read (moto has none). Everything else is read live.

Guarantees: one result per (check, resource); an input that could not be read fails
its check with the reason; a resource the stack's outputs name but the snapshot lacks
fails, never passes by omission.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.intake.scopes import INTAKE_RESOURCE_SERVER, INTAKE_WRITE_SCOPE
from infra.controls.result import failed, not_applicable
from infra.verify import rules
from infra.verify.baseline import (
    AUDIT_KEY_TABLES,
    CUSTOM_ATTRIBUTES,
    KEY_SPECS,
    PASSWORD_MIN_LENGTH,
    PUBLIC_METHODS,
    ROLE_GROUPS,
    SSE_S3_REASON,
    TEMPORARY_PASSWORD_MAX_DAYS,
    WEB_SSE_S3_REASON,
)
from infra.verify.expectations import Expectations
from infra.verify.model import CheckResult
from infra.verify.results import MISSING, CheckResults, fixed, read, read_present, unavailable


def evaluate(expect: Expectations, snapshot: Mapping[str, Any]) -> list[CheckResult]:
    """Every check over ``snapshot``, area by area."""
    results = CheckResults()
    _evaluate_keys(expect, snapshot, results)
    _evaluate_buckets(expect, snapshot, results)
    _evaluate_trail(expect, snapshot, results)
    _evaluate_tables(expect, snapshot, results)
    _evaluate_user_pool(expect, snapshot, results)
    _evaluate_api(expect, snapshot, results)
    _evaluate_api_stages(expect, snapshot, results)
    _evaluate_functions(expect, snapshot, results)
    _evaluate_log_groups(expect, snapshot, results)
    _evaluate_monitoring(expect, snapshot, results)
    _evaluate_ledger(expect, snapshot, results)
    _evaluate_messaging(expect, snapshot, results)
    _evaluate_backup(expect, snapshot, results)
    return results.items


def _evaluate_keys(expect: Expectations, snapshot: Mapping[str, Any], out: CheckResults) -> None:
    for label, arn in expect.keys.items():
        key = read(snapshot.get("keys"), label)
        meta, rotation = read(key, "metadata"), read(key, "rotation")
        name = f"{label} key {arn}"
        key_spec, usage = KEY_SPECS[label]
        out.add("keys.enabled", name, [meta], rules.key_enabled, name, meta)
        out.add(
            "keys.rotation_enabled",
            name,
            [meta, rotation],
            rules.key_rotation_enabled,
            name,
            meta,
            rotation,
        )
        out.add(
            "keys.spec_and_usage",
            name,
            [meta],
            rules.key_spec_and_usage,
            name,
            meta,
            spec=key_spec,
            usage=usage,
        )
        policy = read(key, "policy")
        out.add(
            "keys.policy_root_admin_only",
            name,
            [policy],
            rules.key_policy_root_admin_only,
            name,
            policy,
            account_id=expect.account_id,
        )


def _evaluate_buckets(expect: Expectations, snapshot: Mapping[str, Any], out: CheckResults) -> None:
    log_target = expect.buckets.get("access_log", "")
    bucket_keys = {
        "shard": expect.keys.get("records"),
        "audit": expect.keys.get("audit"),
        "access_log": None,
        "messaging_media": expect.keys.get("messaging"),
        "web": None,
    }
    sse_s3_reasons = {"access_log": SSE_S3_REASON, "web": WEB_SSE_S3_REASON}
    for label, name in expect.buckets.items():
        data = read(snapshot.get("buckets"), label)
        encryption, versioning, block, ownership, policy, logging, lock = (
            read(data, k)
            for k in (
                "encryption",
                "versioning",
                "public_access_block",
                "ownership",
                "policy",
                "logging",
                "object_lock",
            )
        )
        out.add(
            "buckets.default_encryption",
            name,
            [encryption],
            rules.bucket_default_encryption,
            name,
            encryption,
            kms_key_arn=bucket_keys.get(label),
            sse_s3_reason=sse_s3_reasons.get(label, ""),
        )
        out.add(
            "buckets.versioning",
            name,
            [versioning],
            rules.bucket_versioning_enabled,
            name,
            versioning,
        )
        out.add(
            "buckets.public_access_block",
            name,
            [block],
            rules.bucket_blocks_public_access,
            name,
            block,
        )
        out.add(
            "buckets.ownership_enforced",
            name,
            [ownership],
            rules.bucket_owner_enforced,
            name,
            ownership,
        )
        declared = expect.declared_bucket_policies.get(name)
        if declared is not None:
            document, inputs = declared.value, [data]
            source = f"as declared (emulator gap: {declared.why})"
        else:
            document, inputs, source = policy, [policy], "live policy"
        out.add(
            "buckets.denies_insecure_transport",
            name,
            inputs,
            rules.bucket_denies_insecure_transport,
            name,
            expect.bucket_arn(name),
            document,
            source=source,
        )
        if label == "shard":
            out.add(
                "buckets.requires_sse_kms_puts",
                name,
                inputs,
                rules.bucket_requires_sse_kms_puts,
                name,
                expect.bucket_arn(name),
                document,
                kms_key_arn=expect.keys.get("records", ""),
                source=source,
            )
        if label == "access_log":
            out.add(
                "buckets.access_logging",
                name,
                [],
                fixed,
                not_applicable(
                    f"{name}: the access-log bucket is the log target; logging it into itself "
                    "would loop"
                ),
            )
        else:
            out.add(
                "buckets.access_logging",
                name,
                [logging],
                rules.bucket_logs_to,
                name,
                logging,
                target_bucket=log_target,
            )
        if label == "audit":
            out.add(
                "trail.bucket_object_lock",
                name,
                [lock],
                rules.bucket_object_lock_compliance,
                name,
                lock,
                years=expect.audit_retention_years,
            )
            lifecycle = read(data, "lifecycle")
            out.add(
                "buckets.audit_lifecycle",
                name,
                [lifecycle if lifecycle is not None else {}],
                rules.audit_bucket_lifecycle,
                name,
                lifecycle,
                years=expect.audit_retention_years,
            )


def _table_arns(expect: Expectations, snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """Table name -> ARN as described (or the unreadable/missing marker)."""
    arns: dict[str, Any] = {}
    for logical, name in expect.tables.items():
        description = read(read(snapshot.get("tables"), logical), "description")
        if isinstance(description, Mapping) and not unavailable(description):
            arns[name] = description.get("TableArn") or MISSING
        else:
            arns[name] = description
    return arns


def _evaluate_trail(expect: Expectations, snapshot: Mapping[str, Any], out: CheckResults) -> None:
    if not expect.trail_arn:
        return
    trail = read_present(snapshot, "trail")
    description, status, selectors = (
        read(trail, k) for k in ("description", "status", "selectors")
    )
    name = expect.trail_arn
    out.add("trail.logging", name, [status], rules.trail_logging, name, status)
    out.add("trail.multi_region", name, [description], rules.trail_multi_region, name, description)
    out.add(
        "trail.log_file_validation",
        name,
        [description],
        rules.trail_log_file_validation,
        name,
        description,
    )
    out.add(
        "trail.kms_encrypted",
        name,
        [description],
        rules.trail_kms_encrypted,
        name,
        description,
        kms_key_arn=expect.keys.get("audit", ""),
    )
    insights = read(trail, "insights")
    out.add("trail.insights", name, [insights], rules.trail_records_insights, name, insights)
    out.add(
        "trail.management_events",
        name,
        [selectors],
        rules.trail_logs_management_events,
        name,
        selectors,
    )
    stores: list[tuple[str, str, Any]] = []
    if "shard" in expect.buckets:
        bucket = expect.buckets["shard"]
        stores.append((bucket, "AWS::S3::Object", expect.bucket_arn(bucket)))
    for table, arn in _table_arns(expect, snapshot).items():
        stores.append((table, "AWS::DynamoDB::Table", arn))
    for store, resource_type, arn in stores:
        out.add(
            "trail.data_event_selectors",
            store,
            [selectors, arn],
            rules.trail_logs_data_events,
            name,
            selectors,
            resource_type=resource_type,
            resource_arn=arn,
        )
    for function in expect.functions:
        out.add(
            "trail.function_events",
            function,
            [selectors],
            rules.trail_logs_data_events,
            name,
            selectors,
            resource_type="AWS::Lambda::Function",
            resource_arn=expect.function_arn(function),
        )


def _evaluate_tables(expect: Expectations, snapshot: Mapping[str, Any], out: CheckResults) -> None:
    for logical, name in expect.tables.items():
        table = read(snapshot.get("tables"), logical)
        description, backups = read(table, "description"), read(table, "backups")
        key = expect.keys.get("audit" if logical in AUDIT_KEY_TABLES else "records", "")
        out.add(
            "dynamodb.customer_key_encryption",
            name,
            [description],
            rules.table_encrypted_with_customer_key,
            name,
            description,
            kms_key_arn=key,
        )
        out.add("dynamodb.pitr", name, [backups], rules.table_pitr_enabled, name, backups)
        out.add(
            "dynamodb.deletion_protection",
            name,
            [description],
            rules.table_deletion_protected,
            name,
            description,
        )


def _evaluate_user_pool(
    expect: Expectations, snapshot: Mapping[str, Any], out: CheckResults
) -> None:
    if not expect.user_pool_id:
        return
    pool = read_present(snapshot, "user_pool")
    description, mfa, groups, providers, clients, provider_details, resource_servers = (
        read(pool, k)
        for k in (
            "description",
            "mfa",
            "groups",
            "providers",
            "clients",
            "provider_details",
            "resource_servers",
        )
    )
    name = expect.user_pool_id
    out.add(
        "cognito.mfa_on", name, [description, mfa], rules.user_pool_mfa_on, name, description, mfa
    )
    out.add(
        "cognito.password_policy",
        name,
        [description],
        rules.user_pool_password_policy,
        name,
        description,
        min_length=PASSWORD_MIN_LENGTH,
        max_temporary_days=TEMPORARY_PASSWORD_MAX_DAYS,
    )
    out.add(
        "cognito.custom_attributes",
        name,
        [description],
        rules.user_pool_custom_attributes,
        name,
        description,
        required=CUSTOM_ATTRIBUTES,
    )
    out.add(
        "cognito.role_groups",
        name,
        [groups],
        rules.user_pool_role_groups,
        name,
        groups,
        required=ROLE_GROUPS,
    )
    out.add(
        "cognito.federation",
        name,
        [providers],
        rules.user_pool_federation,
        name,
        providers,
        phase=expect.phase,
        expected=expect.federation,
    )
    out.add(
        "cognito.intake_channel",
        name,
        [clients, resource_servers],
        rules.user_pool_intake_channel,
        name,
        resource_servers,
        clients,
        intake_client_ids=expect.intake_client_ids,
        resource_server=INTAKE_RESOURCE_SERVER,
        scope=INTAKE_WRITE_SCOPE,
    )
    out.add(
        "cognito.client_write_attributes",
        name,
        [clients],
        rules.user_pool_clients_cannot_write_granting_attributes,
        name,
        clients,
    )
    out.add(
        "cognito.providers_release_placement_claims",
        name,
        [provider_details],
        rules.user_pool_providers_release_placement_claims,
        name,
        provider_details,
        required=expect.provider_claims,
    )
    out.add(
        "cognito.triggers_configured",
        name,
        [description],
        rules.user_pool_triggers_configured,
        name,
        description,
        functions=expect.functions,
    )
    out.add(
        "cognito.threat_protection",
        name,
        [description],
        rules.user_pool_threat_protection,
        name,
        description,
    )


def _evaluate_api(expect: Expectations, snapshot: Mapping[str, Any], out: CheckResults) -> None:
    if not expect.api_id:
        return
    api = read_present(snapshot, "api")
    rest_api, resources, authorizers = (
        read(api, k) for k in ("rest_api", "resources", "authorizers")
    )
    name = expect.api_id
    live_policy = rest_api.get("securityPolicy") if isinstance(rest_api, Mapping) else None
    declared = expect.declared_api_security_policy
    if live_policy is None and declared is not None:
        out.add(
            "api.tls_policy",
            name,
            [rest_api],
            rules.api_tls13_only,
            name,
            declared.value,
            source=f"as declared (emulator gap: {declared.why})",
        )
    else:
        out.add(
            "api.tls_policy",
            name,
            [rest_api],
            rules.api_tls13_only,
            name,
            live_policy,
            source="live",
        )
    if unavailable(resources):
        out.add("api.authorizer_on_methods", name, [resources], fixed, failed(name))
        return
    methods = sorted(
        (
            (str(r.get("path")), str(m), config)
            for r in resources
            for m, config in (r.get("resourceMethods") or {}).items()
        ),
        key=lambda m: (m[0], m[1]),
    )
    if not methods:
        out.add(
            "api.authorizer_on_methods", name, [], fixed, failed(f"{name}: the API has no methods")
        )
    for path, http_method, config in methods:
        label = f"{name} {http_method} {path}"
        out.add(
            "api.authorizer_on_methods",
            label,
            [authorizers],
            rules.api_method_requires_authorizer,
            label,
            config,
            authorizers,
            user_pool_arn=expect.user_pool_arn(),
            public=(path, http_method) in PUBLIC_METHODS,
            public_reason=PUBLIC_METHODS.get((path, http_method), ""),
        )


def _evaluate_api_stages(
    expect: Expectations, snapshot: Mapping[str, Any], out: CheckResults
) -> None:
    if not expect.api_id:
        return
    api = read_present(snapshot, "api")
    stages, web_acls = read(api, "stages"), read(api, "web_acls")
    if unavailable(stages) or not stages:
        for check_id in ("api.throttling", "api.no_data_trace", "api.waf_attached"):
            out.add(
                check_id,
                expect.api_id,
                [stages],
                fixed,
                failed(f"{expect.api_id}: the API has no deployed stage"),
            )
        return
    for stage in stages:
        stage_name = str(stage.get("stageName"))
        label = f"{expect.api_id} stage {stage_name}"
        if expect.throttle is None:
            out.add(
                "api.throttling",
                label,
                [],
                fixed,
                not_applicable(f"{label}: no throttling configured for this stack"),
            )
        else:
            out.add(
                "api.throttling",
                label,
                [],
                rules.stage_throttled,
                label,
                stage,
                rate_limit=expect.throttle[0],
                burst_limit=expect.throttle[1],
            )
        out.add("api.no_data_trace", label, [], rules.stage_without_data_trace, label, stage)
        if expect.waf_required:
            web_acl = read(web_acls, stage_name)
            out.add(
                "api.waf_attached", label, [web_acl], rules.stage_protected_by_waf, label, web_acl
            )
        else:
            out.add(
                "api.waf_attached",
                label,
                [],
                fixed,
                not_applicable(
                    f"{label}: WAF is not enabled for phase {expect.phase} (stage features.waf)"
                ),
            )


def _stack_arns(expect: Expectations, snapshot: Mapping[str, Any]) -> list[str]:
    arns = list(expect.keys.values())
    arns += [expect.bucket_arn(b) for b in expect.buckets.values()]
    arns += [a for a in _table_arns(expect, snapshot).values() if isinstance(a, str)]
    arns += [expect.log_group_arn(g) for g in expect.log_groups]
    if expect.user_pool_id:
        # the service reads doctors' attributes (AdminGetUser) from its own pool only
        arns.append(expect.user_pool_arn())
    # messaging: the topics, the dead-letter queue, the application service tokens
    arns += list(expect.other_arns)
    return arns


def _evaluate_functions(
    expect: Expectations, snapshot: Mapping[str, Any], out: CheckResults
) -> None:
    stack_arns = _stack_arns(expect, snapshot)
    for name in expect.functions:
        function = read(snapshot.get("functions"), name)
        configuration, policy, role = (
            read(function, k) for k in ("configuration", "policy", "role")
        )
        role = MISSING if role is None else role
        documents = read(role, "documents")
        role_name = role.get("name", "?") if isinstance(role, Mapping) else "?"
        out.add(
            "lambda.role_least_privilege",
            name,
            [configuration, documents],
            rules.role_least_privilege,
            f"{name} (role {role_name})",
            documents,
            stack_arns=stack_arns,
        )
        trust = read(role, "trust")
        out.add(
            "lambda.role_trust_bound_to_source",
            name,
            [configuration, trust],
            rules.role_trust_bound_to_source,
            f"{name} (role {role_name})",
            trust,
        )
        out.add(
            "lambda.no_public_policy",
            name,
            [configuration, policy],
            rules.function_policy_not_public,
            name,
            policy,
            account_id=expect.account_id,
        )


def _evaluate_log_groups(
    expect: Expectations, snapshot: Mapping[str, Any], out: CheckResults
) -> None:
    audit_key = expect.keys.get("audit", "")
    groups = read_present(snapshot, "log_groups")
    for name, min_days in expect.log_groups.items():
        description = read(groups, name)
        out.add(
            "logs.encrypted_retained",
            name,
            [description],
            rules.log_group_encrypted_retained,
            name,
            description,
            kms_key_arn=audit_key,
            min_retention_days=min_days,
        )


def _evaluate_monitoring(
    expect: Expectations, snapshot: Mapping[str, Any], out: CheckResults
) -> None:
    if not expect.trail_log_group:
        return
    monitoring = read_present(snapshot, "monitoring")
    filters, alarms = read(monitoring, "filters"), read(monitoring, "alarms")
    out.add(
        "monitoring.cis_metric_alarms",
        expect.trail_log_group,
        [monitoring, filters, alarms],
        rules.cis_metric_alarms,
        expect.trail_log_group,
        filters,
        alarms,
    )


def _evaluate_ledger(expect: Expectations, snapshot: Mapping[str, Any], out: CheckResults) -> None:
    if expect.ledger is None:
        return
    ledger = read_present(snapshot, "ledger")
    name = f"audit ledger {expect.ledger.table}"
    out.add("ledger.integrity", name, [ledger], rules.ledger_verifies, name, ledger)


def _evaluate_messaging(
    expect: Expectations, snapshot: Mapping[str, Any], out: CheckResults
) -> None:
    """The homeserver's database, its load balancers' listeners and its configuration."""
    for name in expect.databases:
        data = read(snapshot.get("databases"), name)
        instance, parameters = read(data, "instance"), read(data, "parameters")
        declared_key = expect.declared_database_keys.get(name)
        if declared_key is not None and isinstance(instance, Mapping):
            # The key is on another emulator (a recorded gap): judge the declared one.
            instance = {**instance, "KmsKeyId": declared_key.value}
        out.add(
            "messaging.database_encrypted",
            name,
            [instance],
            rules.database_encrypted,
            name,
            instance,
            key_arn=expect.keys.get("messaging"),
        )
        out.add(
            "messaging.database_not_public",
            name,
            [instance],
            rules.database_not_public,
            name,
            instance,
        )
        out.add(
            "messaging.database_requires_tls",
            name,
            [instance, parameters],
            rules.database_requires_tls,
            name,
            parameters,
        )
    for arn in expect.load_balancers:
        listeners = read(read(snapshot.get("load_balancers"), arn), "listeners")
        if unavailable(listeners):
            out.add("messaging.listener_tls13", arn, [listeners], fixed, failed(arn))
            continue
        if not listeners:
            out.add("messaging.listener_tls13", arn, [], fixed, failed(f"{arn}: no listener"))
        for listener in listeners:
            label = f"{arn.rsplit('/', 2)[-2]}:{listener.get('Port')}"
            out.add(
                "messaging.listener_tls13",
                label,
                [listener],
                rules.listener_tls13,
                label,
                listener.get("Protocol"),
                listener.get("SslPolicy"),
            )
    for family in expect.task_families:
        definition = read(read(snapshot.get("task_definitions"), family), "definition")
        out.add(
            "messaging.federation_closed",
            family,
            [definition],
            rules.homeserver_federation_closed,
            family,
            definition.get("containerDefinitions") if isinstance(definition, Mapping) else None,
        )


def _evaluate_backup(expect: Expectations, snapshot: Mapping[str, Any], out: CheckResults) -> None:
    """The vault, its lock and plan rules live; the selection live, or as declared where
    the record's gap says the emulator holds none. A stack with tables and no vault in
    its outputs fails."""
    if not expect.tables:
        return
    name = expect.backup_vault or "backup vault"
    if not expect.backup_vault:
        out.add("backup.plan_coverage", name, [MISSING], fixed, failed(name))
        return
    backup = read_present(snapshot, "backup")
    vault, plans = read(backup, "vault"), read(backup, "plans")
    required: dict[str, str] = {}
    for table, arn in _table_arns(expect, snapshot).items():
        if isinstance(arn, str):
            required[f"table {table}"] = arn
    for label in ("shard", "audit", "messaging_media"):
        if expect.buckets.get(label):
            bucket = expect.buckets[label]
            required[f"bucket {bucket}"] = expect.bucket_arn(bucket)
    for database in expect.databases:
        required[f"database {database}"] = expect.database_arn(database)
    selected: list[Any] = []
    sources = set()
    declared = expect.declared_backup_selection
    for plan in plans if isinstance(plans, list) else []:
        live = read(plan, "selected")
        if unavailable(live) and declared is not None:
            selected.extend(declared.value)
            sources.add(f"selection as declared (emulator gap: {declared.why})")
        elif isinstance(live, list):
            selected.extend(live)
            sources.add("live")
        else:
            out.add("backup.plan_coverage", name, [live], fixed, failed(name))
            return
    out.add(
        "backup.plan_coverage",
        name,
        [backup, plans],
        rules.backup_plan_coverage,
        name,
        vault,
        plans,
        selected=selected,
        required=required,
        source="; ".join(sorted(sources)) or "live",
    )
