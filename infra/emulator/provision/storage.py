"""S3 buckets (and their configuration resources) and DynamoDB tables."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from botocore.exceptions import ClientError

from infra.emulator import gaps
from infra.emulator.provision import (
    Context,
    Declared,
    Provisioned,
    Provisioner,
    as_int,
    error_code,
    ignore_missing,
    provisioner,
    tag_list,
)
from infra.emulator.record import ResourceRecord

# How long an S3 logging configuration waits for its target bucket's policy, which the
# program declares independently (AWS does not check it; moto does, see BucketLogging).
LOG_TARGET_POLICY_WAIT_S = 20.0


def _bucket_state(ctx: Context, bucket: str) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "arn": f"arn:aws:s3:::{bucket}",
        "bucketDomainName": f"{bucket}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{bucket}.s3.{ctx.region}.amazonaws.com",
        "region": ctx.region,
    }


@provisioner
class Bucket(Provisioner):
    type_token = "aws:s3/bucket:Bucket"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        s3 = ctx.client("s3")
        inputs = declared.inputs
        name = str(inputs.get("bucket") or declared.name)
        try:
            s3.head_bucket(Bucket=name)
        except ClientError as error:
            if error_code(error) not in ("404", "NoSuchBucket", "NotFound"):
                raise
            kwargs: dict[str, Any] = {"Bucket": name}
            if ctx.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": ctx.region}
            if inputs.get("objectLockEnabled"):
                kwargs["ObjectLockEnabledForBucket"] = True
            s3.create_bucket(**kwargs)
        if inputs.get("tags"):
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(inputs["tags"])})
        return Provisioned(id=name, state=_bucket_state(ctx, name))

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        s3 = ctx.client("s3")
        try:
            _empty_bucket(s3, record.id)
        except ClientError as error:
            if error_code(error) == "NoSuchBucket":
                return
            raise
        ignore_missing(lambda: s3.delete_bucket(Bucket=record.id))


def _empty_bucket(s3: Any, bucket: str) -> None:
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket):
        objects = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        if objects:
            s3.delete_objects(
                Bucket=bucket,
                Delete={"Objects": objects, "Quiet": True},
                BypassGovernanceRetention=True,
            )


class _BucketConfig(Provisioner):
    """A resource that only configures one bucket: its id is the bucket name."""

    def attached_to(self, record: ResourceRecord) -> str | None:
        return str(record.inputs.get("bucket") or record.id)

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        bucket = str(declared.inputs["bucket"])
        self.apply(ctx, bucket, declared)
        return Provisioned(id=bucket)

    def apply(self, ctx: Context, bucket: str, declared: Declared) -> None:
        # Hook for the default ensure(); a subclass that overrides ensure() itself (the
        # bucket policy, which splits conditional statements out) need not provide it.
        raise NotImplementedError(f"{type(self).__name__} must define apply() or ensure()")

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        bucket = str(record.inputs.get("bucket") or record.id)
        ignore_missing(
            lambda: self.remove(ctx, bucket),
            "NoSuchBucket",
            "NoSuchLifecycleConfiguration",
            "ServerSideEncryptionConfigurationNotFoundError",
            "OwnershipControlsNotFoundError",
            "NoSuchPublicAccessBlockConfiguration",
            "NoSuchBucketPolicy",
            "NoSuchCORSConfiguration",
        )

    def remove(self, ctx: Context, bucket: str) -> None:
        # Hook for the default delete(), as apply() is for ensure().
        raise NotImplementedError(f"{type(self).__name__} must define remove() or delete()")


@provisioner
class BucketVersioning(_BucketConfig):
    type_token = "aws:s3/bucketVersioning:BucketVersioning"

    def apply(self, ctx: Context, bucket: str, declared: Declared) -> None:
        status = declared.inputs["versioningConfiguration"]["status"]
        ctx.client("s3").put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": status}
        )

    def remove(self, ctx: Context, bucket: str) -> None:
        # Versioning cannot be switched off once on; removing the resource suspends it.
        ctx.client("s3").put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Suspended"}
        )


@provisioner
class BucketPublicAccessBlock(_BucketConfig):
    type_token = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"

    def apply(self, ctx: Context, bucket: str, declared: Declared) -> None:
        i = declared.inputs
        ctx.client("s3").put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": bool(i.get("blockPublicAcls", False)),
                "IgnorePublicAcls": bool(i.get("ignorePublicAcls", False)),
                "BlockPublicPolicy": bool(i.get("blockPublicPolicy", False)),
                "RestrictPublicBuckets": bool(i.get("restrictPublicBuckets", False)),
            },
        )

    def remove(self, ctx: Context, bucket: str) -> None:
        ctx.client("s3").delete_public_access_block(Bucket=bucket)


@provisioner
class BucketOwnershipControls(_BucketConfig):
    type_token = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"

    def apply(self, ctx: Context, bucket: str, declared: Declared) -> None:
        ownership = declared.inputs["rule"]["objectOwnership"]
        ctx.client("s3").put_bucket_ownership_controls(
            Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": ownership}]}
        )

    def remove(self, ctx: Context, bucket: str) -> None:
        ctx.client("s3").delete_bucket_ownership_controls(Bucket=bucket)


@provisioner
class BucketServerSideEncryption(_BucketConfig):
    type_token = (
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )

    def apply(self, ctx: Context, bucket: str, declared: Declared) -> None:
        rules = []
        for rule in declared.inputs["rules"]:
            default = rule.get("applyServerSideEncryptionByDefault", {})
            by_default: dict[str, Any] = {"SSEAlgorithm": default["sseAlgorithm"]}
            if default.get("kmsMasterKeyId"):
                by_default["KMSMasterKeyID"] = default["kmsMasterKeyId"]
            out: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": by_default}
            if rule.get("bucketKeyEnabled") is not None:
                out["BucketKeyEnabled"] = bool(rule["bucketKeyEnabled"])
            rules.append(out)
        ctx.client("s3").put_bucket_encryption(
            Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules}
        )

    def remove(self, ctx: Context, bucket: str) -> None:
        ctx.client("s3").delete_bucket_encryption(Bucket=bucket)


@provisioner
class BucketLogging(_BucketConfig):
    type_token = "aws:s3/bucketLogging:BucketLogging"

    def apply(self, ctx: Context, bucket: str, declared: Declared) -> None:
        status = {
            "LoggingEnabled": {
                "TargetBucket": declared.inputs["targetBucket"],
                "TargetPrefix": declared.inputs.get("targetPrefix", ""),
            }
        }
        s3 = ctx.client("s3")
        with ctx.bucket_policy_changed:
            # moto refuses a target whose policy does not yet allow logging.s3.amazonaws.com
            # (AWS does not check with ACLs disabled). The program declares that policy
            # independently, so it may land a moment later: wait for it, bounded.
            refused: ClientError | None = None
            for _ in range(50):
                try:
                    s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus=status)
                    return
                except ClientError as error:
                    if error_code(error) != "InvalidTargetBucketForLogging":
                        raise
                    refused = error
                if not ctx.bucket_policy_changed.wait(timeout=LOG_TARGET_POLICY_WAIT_S):
                    break
            assert refused is not None
            raise refused

    def remove(self, ctx: Context, bucket: str) -> None:
        ctx.client("s3").put_bucket_logging(Bucket=bucket, BucketLoggingStatus={})


@provisioner
class BucketLifecycleConfiguration(_BucketConfig):
    type_token = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"

    def apply(self, ctx: Context, bucket: str, declared: Declared) -> None:
        rules = []
        for rule in declared.inputs["rules"]:
            out: dict[str, Any] = {
                "ID": rule["id"],
                "Status": rule["status"],
                "Filter": {"Prefix": rule.get("filter", {}).get("prefix", "")},
            }
            if "expiration" in rule:
                out["Expiration"] = {"Days": as_int(rule["expiration"]["days"])}
            if "noncurrentVersionExpiration" in rule:
                out["NoncurrentVersionExpiration"] = {
                    "NoncurrentDays": as_int(rule["noncurrentVersionExpiration"]["noncurrentDays"])
                }
            if "abortIncompleteMultipartUpload" in rule:
                out["AbortIncompleteMultipartUpload"] = {
                    "DaysAfterInitiation": as_int(
                        rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"]
                    )
                }
            rules.append(out)
        ctx.client("s3").put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": rules}
        )

    def remove(self, ctx: Context, bucket: str) -> None:
        ctx.client("s3").delete_bucket_lifecycle(Bucket=bucket)


def _lock_rule(config: dict[str, Any]) -> dict[str, Any]:
    """An Object Lock configuration without the zero period moto adds (``Days: 0`` beside
    ``Years``), so what stands compares equal to what is declared."""
    retention = dict((config.get("Rule") or {}).get("DefaultRetention") or {})
    retention = {k: v for k, v in retention.items() if v not in (0, None)}
    return {"enabled": config.get("ObjectLockEnabled"), "retention": retention}


@provisioner
class BucketObjectLockConfiguration(_BucketConfig):
    type_token = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"

    def apply(self, ctx: Context, bucket: str, declared: Declared) -> None:
        i = declared.inputs
        config: dict[str, Any] = {"ObjectLockEnabled": i.get("objectLockEnabled", "Enabled")}
        retention = (i.get("rule") or {}).get("defaultRetention")
        if retention:
            default: dict[str, Any] = {"Mode": retention["mode"]}
            if retention.get("years") is not None:
                default["Years"] = as_int(retention["years"])
            if retention.get("days") is not None:
                default["Days"] = as_int(retention["days"])
            config["Rule"] = {"DefaultRetention": default}
        s3 = ctx.client("s3")
        # A redeploy declaring what stands changes nothing: moto refuses the put on a
        # bucket holding objects (the ledger's checkpoints, archived reports), which AWS
        # allows on a bucket with Object Lock enabled.
        with contextlib.suppress(ClientError):
            current = s3.get_object_lock_configuration(Bucket=bucket)
            if _lock_rule(current.get("ObjectLockConfiguration") or {}) == _lock_rule(config):
                return
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=config)

    def remove(self, ctx: Context, bucket: str) -> None:
        # Object Lock cannot be disabled on a bucket; it goes with the bucket.
        return None


@provisioner
class BucketCorsConfiguration(_BucketConfig):
    """The shard bucket's CORS rule for the hub's web client; moto stores it but answers
    every request ``Access-Control-Allow-Origin: *``, and checks no presigned URL: both
    are gaps, recorded with this resource."""

    type_token = "aws:s3/bucketCorsConfiguration:BucketCorsConfiguration"

    def apply(self, ctx: Context, bucket: str, declared: Declared) -> None:
        rules = []
        for rule in declared.inputs["corsRules"]:
            out: dict[str, Any] = {
                "AllowedMethods": list(rule["allowedMethods"]),
                "AllowedOrigins": list(rule["allowedOrigins"]),
            }
            for source, target in (
                ("id", "ID"),
                ("allowedHeaders", "AllowedHeaders"),
                ("exposeHeaders", "ExposeHeaders"),
            ):
                if rule.get(source):
                    out[target] = rule[source]
            if rule.get("maxAgeSeconds") is not None:
                out["MaxAgeSeconds"] = as_int(rule["maxAgeSeconds"])
            rules.append(out)
        ctx.client("s3").put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
        ctx.add_gap(gaps.cors_not_enforced(declared.name, ctx.emulator_name("s3")))
        ctx.add_gap(gaps.presigned_shard_urls(declared.name, ctx.emulator_name("s3")))

    def remove(self, ctx: Context, bucket: str) -> None:
        ctx.client("s3").delete_bucket_cors(Bucket=bucket)


@provisioner
class BucketPolicy(_BucketConfig):
    """Hands moto only the statements it can hold without changing their meaning.

    moto ignores Condition blocks: a conditional Deny becomes an unconditional one
    (denying every request), a conditional Allow an unconditional one. Conditional
    statements are therefore kept out of moto, except Allows to an AWS service principal:
    no AWS service acts inside the emulator, so widening them grants nobody anything, and
    moto's S3 log-delivery validation needs the ``logging.s3.amazonaws.com`` grant. The
    declared document stays in the deployment record; the gap names the covering checks.
    """

    type_token = "aws:s3/bucketPolicy:BucketPolicy"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        bucket = str(declared.inputs["bucket"])
        document = json.loads(declared.inputs["policy"])
        statements = document.get("Statement", [])
        if isinstance(statements, dict):
            statements = [statements]
        kept, dropped = [], []
        for index, statement in enumerate(statements):
            if "Condition" not in statement or _service_allow(statement):
                kept.append(statement)
            else:
                dropped.append(str(statement.get("Sid") or f"statement {index}"))
        s3 = ctx.client("s3")
        applied: dict[str, Any] | None = None
        if kept:
            applied = {**document, "Statement": kept}
            s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(applied))
        else:
            ignore_missing(lambda: s3.delete_bucket_policy(Bucket=bucket), "NoSuchBucketPolicy")
        with ctx.bucket_policy_changed:
            ctx.bucket_policy_changed.notify_all()
        if dropped:
            ctx.add_gap(
                gaps.conditional_bucket_policy(declared.name, dropped, ctx.emulator_name("s3"))
            )
        if ctx.served_by_localstack("s3"):
            ctx.add_gap(gaps.bucket_policy_not_evaluated(declared.name))
        return Provisioned(
            id=bucket,
            state={
                "appliedPolicy": json.dumps(applied) if applied else None,
                "statementsNotApplied": dropped,
            },
        )

    def remove(self, ctx: Context, bucket: str) -> None:
        ctx.client("s3").delete_bucket_policy(Bucket=bucket)


def _service_allow(statement: dict[str, Any]) -> bool:
    principal = statement.get("Principal")
    return (
        statement.get("Effect") == "Allow"
        and isinstance(principal, dict)
        and set(principal) == {"Service"}
    )


@provisioner
class Table(Provisioner):
    type_token = "aws:dynamodb/table:Table"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        ddb = ctx.client("dynamodb")
        i = declared.inputs
        name = str(i.get("name") or declared.name)
        sse = i.get("serverSideEncryption") or {}
        sse_spec: dict[str, Any] = {"Enabled": bool(sse.get("enabled", False))}
        if sse.get("enabled"):
            sse_spec["SSEType"] = "KMS"
            if sse.get("kmsKeyArn"):
                sse_spec["KMSMasterKeyId"] = sse["kmsKeyArn"]
        protection = bool(i.get("deletionProtectionEnabled", False))
        try:
            description = ddb.describe_table(TableName=name)["Table"]
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            key_schema = [{"AttributeName": i["hashKey"], "KeyType": "HASH"}]
            if i.get("rangeKey"):
                key_schema.append({"AttributeName": i["rangeKey"], "KeyType": "RANGE"})
            kwargs: dict[str, Any] = {
                "TableName": name,
                "AttributeDefinitions": [
                    {"AttributeName": a["name"], "AttributeType": a["type"]}
                    for a in i.get("attributes", [])
                ],
                "KeySchema": key_schema,
                "BillingMode": i.get("billingMode", "PAY_PER_REQUEST"),
                "SSESpecification": sse_spec,
                "DeletionProtectionEnabled": protection,
            }
            if i.get("tags"):
                kwargs["Tags"] = tag_list(i["tags"])
            description = ddb.create_table(**kwargs)["TableDescription"]
        else:
            current = description.get("SSEDescription", {}).get("KMSMasterKeyArn")
            update: dict[str, Any] = {}
            if description.get("DeletionProtectionEnabled") != protection:
                update["DeletionProtectionEnabled"] = protection
            if sse.get("kmsKeyArn") and current != sse["kmsKeyArn"]:
                update["SSESpecification"] = sse_spec
            if update:
                ddb.update_table(TableName=name, **update)
            if i.get("tags"):
                ddb.tag_resource(ResourceArn=description["TableArn"], Tags=tag_list(i["tags"]))
        pitr = bool((i.get("pointInTimeRecovery") or {}).get("enabled", False))
        ddb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": pitr}
        )
        return Provisioned(
            id=name,
            state={
                "arn": description["TableArn"],
                "name": name,
                "streamArn": description.get("LatestStreamArn", ""),
            },
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        ddb = ctx.client("dynamodb")
        try:
            ddb.update_table(TableName=record.id, DeletionProtectionEnabled=False)
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                return
            raise
        ignore_missing(lambda: ddb.delete_table(TableName=record.id))


@provisioner
class TableItem(Provisioner):
    """One item a program declares in a table (a layer's switch): put on deploy, deleted
    on destroy. The item's key is kept in the locator so the delete needs no inputs."""

    type_token = "aws:dynamodb/tableItem:TableItem"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        i = declared.inputs
        table = str(i["tableName"])
        item = json.loads(str(i["item"]))
        key = {i["hashKey"]: item[i["hashKey"]]}
        if i.get("rangeKey"):
            key[i["rangeKey"]] = item[i["rangeKey"]]
        ctx.client("dynamodb").put_item(TableName=table, Item=item)
        return Provisioned(
            id=f"{table}|{json.dumps(key, sort_keys=True)}",
            state={"tableName": table, "item": i["item"]},
            locator={"table": table, "key": key},
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        ddb = ctx.client("dynamodb")
        table, key = record.locator["table"], record.locator["key"]
        try:
            ddb.delete_item(TableName=table, Key=key)
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":  # the table is gone
                raise


def _asset_path(source: Any) -> str | None:
    """The file path of a declared ``pulumi.FileAsset`` (as the mock runtime passes it)."""
    if isinstance(source, str):
        return source
    if isinstance(source, dict):
        path = source.get("path")
        return str(path) if path else None
    path = getattr(source, "path", None)
    return str(path) if path else None


# What the emulator stores for a site file that was not built: the page says so.
NOT_BUILT_PAGE = (
    b"<!doctype html><html lang=en><meta charset=utf-8><title>Web client not built</title>"
    b"<p>The web client was not built. Run <code>make web</code> and deploy again.</p>"
)


@provisioner
class BucketObjectv2(Provisioner):
    """An object the program declares (the web client's files and config): its content
    from the declared ``source`` file or ``content``, with its media type, cache control
    and metadata. A site file that was never built is stored as a page saying so."""

    type_token = "aws:s3/bucketObjectv2:BucketObjectv2"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        from pathlib import Path

        from infra.config_source import ROOT

        i = declared.inputs
        bucket, key = str(i["bucket"]), str(i["key"])
        body: bytes
        if i.get("content") is not None:
            body = str(i["content"]).encode("utf-8")
        else:
            path = _asset_path(i.get("source"))
            file = Path(path) if path else None
            if file is not None and not file.is_absolute():
                file = ROOT / file
            if file is not None and file.is_file():
                body = file.read_bytes()
            else:
                body = NOT_BUILT_PAGE if key.endswith(".html") else b""
        metadata = {str(k): str(v) for k, v in (i.get("metadata") or {}).items()}
        put = {
            "Bucket": bucket,
            "Key": key,
            "Body": body,
            "Metadata": metadata,
            **{
                target: str(i[source])
                for source, target in (
                    ("contentType", "ContentType"),
                    ("cacheControl", "CacheControl"),
                )
                if i.get(source)
            },
        }
        result = ctx.client("s3").put_object(**put)
        if metadata:
            ctx.add_gap(gaps.aws_endpoints_on_the_emulator(declared.name))
        return Provisioned(
            id=key,
            state={
                "bucket": bucket,
                "key": key,
                "etag": str(result.get("ETag", "")).strip('"'),
                "versionId": result.get("VersionId"),
            },
            locator={"bucket": bucket},
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        # Every version of the key, so no delete marker is left (moto 5 then fails to
        # empty the bucket: its delete markers cannot be disposed of).
        s3 = ctx.client("s3")
        bucket = str(record.locator.get("bucket"))
        try:
            listed = s3.list_object_versions(Bucket=bucket, Prefix=record.id)
        except ClientError as error:
            if error_code(error) == "NoSuchBucket":
                return
            raise
        for version in listed.get("Versions", []) + listed.get("DeleteMarkers", []):
            if version["Key"] == record.id:
                s3.delete_object(Bucket=bucket, Key=record.id, VersionId=version["VersionId"])
