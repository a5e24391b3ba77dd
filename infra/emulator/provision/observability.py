"""CloudWatch Logs groups and metric filters, CloudWatch alarms, the CloudTrail trail and
the SNS alarm topic with its policy and subscription."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from infra.emulator import gaps
from infra.emulator.provision import (
    Context,
    Declared,
    Provisioned,
    Provisioner,
    as_int,
    drop_none,
    existing,
    ignore_missing,
    provisioner,
    tag_list,
)
from infra.emulator.record import ResourceRecord


@provisioner
class LogGroup(Provisioner):
    type_token = "aws:cloudwatch/logGroup:LogGroup"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        logs = ctx.client("logs")
        i = declared.inputs
        name = str(i.get("name") or declared.name)
        found = [
            g
            for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
            if g["logGroupName"] == name
        ]
        if not found:
            logs.create_log_group(
                **drop_none(
                    {"logGroupName": name, "kmsKeyId": i.get("kmsKeyId"), "tags": i.get("tags")}
                )
            )
        elif i.get("kmsKeyId") and found[0].get("kmsKeyId") != i["kmsKeyId"]:
            # AWS would AssociateKmsKey in place; moto lacks it, so the group is replaced
            # (an emulated group holds no events worth keeping: nothing delivers to it).
            logs.delete_log_group(logGroupName=name)
            logs.create_log_group(
                **drop_none(
                    {"logGroupName": name, "kmsKeyId": i.get("kmsKeyId"), "tags": i.get("tags")}
                )
            )
        if i.get("retentionInDays"):
            logs.put_retention_policy(
                logGroupName=name, retentionInDays=as_int(i["retentionInDays"])
            )
        return Provisioned(
            id=name, state={"name": name, "arn": ctx.arn("logs", f"log-group:{name}")}
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        logs = ctx.client("logs")
        ignore_missing(lambda: logs.delete_log_group(logGroupName=record.id))


@provisioner
class LogMetricFilter(Provisioner):
    type_token = "aws:cloudwatch/logMetricFilter:LogMetricFilter"

    def attached_to(self, record: ResourceRecord) -> str | None:
        return str(record.inputs.get("logGroupName") or "") or None

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        i = declared.inputs
        name = str(i.get("name") or declared.name)
        t = i["metricTransformation"]
        ctx.client("logs").put_metric_filter(
            logGroupName=i["logGroupName"],
            filterName=name,
            filterPattern=i["pattern"],
            metricTransformations=[
                drop_none(
                    {
                        "metricName": t["name"],
                        "metricNamespace": t["namespace"],
                        "metricValue": str(t["value"]),
                        "defaultValue": float(t["defaultValue"]) if t.get("defaultValue") else None,
                    }
                )
            ],
        )
        return Provisioned(id=name, locator={"log_group": i["logGroupName"]})

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        logs = ctx.client("logs")
        ignore_missing(
            lambda: logs.delete_metric_filter(
                logGroupName=record.locator["log_group"], filterName=record.id
            )
        )


@provisioner
class MetricAlarm(Provisioner):
    type_token = "aws:cloudwatch/metricAlarm:MetricAlarm"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        i = declared.inputs
        name = str(i.get("name") or declared.name)
        ctx.client("cloudwatch").put_metric_alarm(
            **drop_none(
                {
                    "AlarmName": name,
                    "AlarmDescription": i.get("alarmDescription"),
                    "Namespace": i.get("namespace"),
                    "MetricName": i.get("metricName"),
                    "Statistic": i.get("statistic"),
                    "Period": as_int(i["period"]) if "period" in i else None,
                    "EvaluationPeriods": as_int(i["evaluationPeriods"]),
                    "Threshold": float(i["threshold"]) if "threshold" in i else None,
                    "ComparisonOperator": i["comparisonOperator"],
                    "TreatMissingData": i.get("treatMissingData"),
                    "AlarmActions": i.get("alarmActions"),
                    "ActionsEnabled": i.get("actionsEnabled", True),
                }
            )
        )
        return Provisioned(id=name, state={"arn": ctx.arn("cloudwatch", f"alarm:{name}")})

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        ctx.client("cloudwatch").delete_alarms(AlarmNames=[record.id])


def _selectors(i: dict[str, Any]) -> list[dict[str, Any]]:
    keys = {
        "equals": "Equals",
        "startsWiths": "StartsWith",
        "endsWiths": "EndsWith",
        "notEquals": "NotEquals",
        "notStartsWiths": "NotStartsWith",
        "notEndsWiths": "NotEndsWith",
    }
    out = []
    for selector in i.get("advancedEventSelectors") or []:
        fields = []
        for field in selector.get("fieldSelectors", []):
            item: dict[str, Any] = {"Field": field["field"]}
            for ours, theirs in keys.items():
                if field.get(ours):
                    item[theirs] = list(field[ours])
            fields.append(item)
        out.append(drop_none({"Name": selector.get("name"), "FieldSelectors": fields}))
    return out


@provisioner
class Trail(Provisioner):
    type_token = "aws:cloudtrail/trail:Trail"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        ct = ctx.client("cloudtrail")
        i = declared.inputs
        name = str(i.get("name") or declared.name)
        settings = drop_none(
            {
                "S3BucketName": i["s3BucketName"],
                "S3KeyPrefix": i.get("s3KeyPrefix"),
                "IncludeGlobalServiceEvents": i.get("includeGlobalServiceEvents"),
                "IsMultiRegionTrail": i.get("isMultiRegionTrail"),
                "EnableLogFileValidation": i.get("enableLogFileValidation"),
                "CloudWatchLogsLogGroupArn": i.get("cloudWatchLogsGroupArn"),
                "CloudWatchLogsRoleArn": i.get("cloudWatchLogsRoleArn"),
                "KmsKeyId": i.get("kmsKeyId"),
                "IsOrganizationTrail": i.get("isOrganizationTrail"),
            }
        )
        if ctx.endpoint_for("s3") != ctx.endpoint_for("cloudtrail"):
            _mirror_bucket(ctx, str(i["s3BucketName"]))
            ctx.add_gap(gaps.trail_bucket_on_another_emulator(declared.name))
        if existing(lambda: ct.get_trail(Name=name), "TrailNotFoundException") is None:
            trail = ct.create_trail(
                Name=name,
                **settings,
                **({"TagsList": tag_list(i["tags"])} if i.get("tags") else {}),
            )
        else:
            trail = ct.update_trail(Name=name, **settings)
        selectors = _selectors(i)
        if selectors:
            ct.put_event_selectors(TrailName=name, AdvancedEventSelectors=selectors)
        insights = [{"InsightType": s["insightType"]} for s in i.get("insightSelectors") or []]
        if insights:
            ct.put_insight_selectors(TrailName=name, InsightSelectors=insights)
        if i.get("enableLogging", True):
            ct.start_logging(Name=name)
        else:
            ct.stop_logging(Name=name)
        ctx.add_gap(gaps.trail_delivery(declared.name))
        arn = trail.get("TrailARN") or ctx.arn("cloudtrail", f"trail/{name}")
        return Provisioned(id=name, state={"arn": arn, "name": name, "homeRegion": ctx.region})

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        ct = ctx.client("cloudtrail")
        ignore_missing(lambda: ct.delete_trail(Name=record.id), "TrailNotFoundException")
        if ctx.endpoint_for("s3") != ctx.endpoint_for("cloudtrail"):
            s3 = ctx.client("s3", on="cloudtrail")
            bucket = str(record.inputs.get("s3BucketName", ""))
            ignore_missing(lambda: s3.delete_bucket(Bucket=bucket))


def _mirror_bucket(ctx: Context, bucket: str) -> None:
    """An empty bucket of the trail's bucket name on the emulator that serves CloudTrail.

    moto's CreateTrail refuses a bucket its own S3 does not hold; when S3 is served by
    another emulator (LocalStack), the real, configured bucket lives there and this one
    only satisfies that existence check (the trail_bucket_on_another_emulator gap).
    """
    s3 = ctx.client("s3", on="cloudtrail")
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": ctx.region}
        )


@provisioner
class Topic(Provisioner):
    type_token = "aws:sns/topic:Topic"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        sns = ctx.client("sns")
        i = declared.inputs
        name = str(i.get("name") or declared.name)
        attributes = drop_none({"KmsMasterKeyId": i.get("kmsMasterKeyId")})
        # CreateTopic is idempotent by name.
        arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
        for key, value in attributes.items():
            sns.set_topic_attributes(TopicArn=arn, AttributeName=key, AttributeValue=value)
        return Provisioned(id=arn, state={"arn": arn, "name": name})

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        sns = ctx.client("sns")
        ignore_missing(lambda: sns.delete_topic(TopicArn=record.id))


@provisioner
class TopicPolicy(Provisioner):
    type_token = "aws:sns/topicPolicy:TopicPolicy"

    def attached_to(self, record: ResourceRecord) -> str | None:
        return str(record.inputs.get("arn") or "") or None

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        arn = str(declared.inputs["arn"])
        ctx.client("sns").set_topic_attributes(
            TopicArn=arn, AttributeName="Policy", AttributeValue=declared.inputs["policy"]
        )
        ctx.add_gap(gaps.topic_policy(declared.name))
        return Provisioned(id=arn)

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        # The topic's default policy comes back when the topic is deleted; nothing to undo.
        return None


@provisioner
class TopicSubscription(Provisioner):
    type_token = "aws:sns/topicSubscription:TopicSubscription"

    def attached_to(self, record: ResourceRecord) -> str | None:
        return str(record.inputs.get("topic") or "") or None

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        sns = ctx.client("sns")
        i = declared.inputs
        topic, protocol, endpoint = str(i["topic"]), str(i["protocol"]), str(i["endpoint"])
        for sub in sns.list_subscriptions_by_topic(TopicArn=topic).get("Subscriptions", []):
            if sub["Protocol"] == protocol and sub["Endpoint"] == endpoint:
                arn = sub["SubscriptionArn"]
                break
        else:
            arn = sns.subscribe(
                TopicArn=topic, Protocol=protocol, Endpoint=endpoint, ReturnSubscriptionArn=True
            )["SubscriptionArn"]
        if protocol in ("email", "email-json"):
            ctx.add_gap(gaps.alarm_delivery(declared.name))
        return Provisioned(id=arn, state={"arn": arn})

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        sns = ctx.client("sns")
        ignore_missing(lambda: sns.unsubscribe(SubscriptionArn=record.id))
