"""Monitoring: CIS AWS Foundations 4.x metric filters and alarms on the trail's log group.

Guarantees: each alarm counts matching CloudTrail events over 5 minutes and notifies
a KMS-encrypted SNS topic on the first one; the topic accepts publishes only from
CloudWatch alarms of this account and delivers to the subscription in the stage file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.components.documents import policy_document
from infra.stage import AlarmSubscription

METRIC_NAMESPACE = "Hub/CISBenchmark"

# A layer's own alarms, on the core's trail: what its phase adds and could be undone by a
# change outside the program.
LAYER_ALARMS: dict[int, dict[str, tuple[str, str]]] = {
    2: {
        "2.1": (
            "identity-provider-changes",
            "{ ($.eventSource = cognito-idp.amazonaws.com) && "
            "(($.eventName = CreateIdentityProvider) || ($.eventName = UpdateIdentityProvider) "
            "|| ($.eventName = DeleteIdentityProvider) || ($.eventName = UpdateUserPoolClient) "
            "|| ($.eventName = DeleteUserPoolClient)) }",
        ),
    },
    3: {
        "3.1": (
            "web-acl-changes",
            "{ ($.eventSource = wafv2.amazonaws.com) && (($.eventName = UpdateWebACL) || "
            "($.eventName = DeleteWebACL) || ($.eventName = DisassociateWebACL)) }",
        ),
    },
}

# CIS AWS Foundations Benchmark v3.0 section 4 (monitoring): id -> (name, pattern). The
# events each must catch are in infra.controls.predicates.CIS_MONITORING (what the pack
# and verify check these patterns against).
CIS_ALARMS: dict[str, tuple[str, str]] = {
    "4.1": (
        "unauthorized-api-calls",
        '{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") }',
    ),
    "4.2": (
        "console-sign-in-without-mfa",
        '{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && '
        '($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }',
    ),
    "4.3": (
        "root-account-usage",
        '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS '
        '&& $.eventType != "AwsServiceEvent" }',
    ),
    "4.4": (
        "iam-policy-changes",
        "{ ($.eventName=DeleteGroupPolicy) || ($.eventName=DeleteRolePolicy) || "
        "($.eventName=DeleteUserPolicy) || ($.eventName=PutGroupPolicy) || "
        "($.eventName=PutRolePolicy) || ($.eventName=PutUserPolicy) || "
        "($.eventName=CreatePolicy) || ($.eventName=DeletePolicy) || "
        "($.eventName=CreatePolicyVersion) || ($.eventName=DeletePolicyVersion) || "
        "($.eventName=AttachRolePolicy) || ($.eventName=DetachRolePolicy) || "
        "($.eventName=AttachUserPolicy) || ($.eventName=DetachUserPolicy) || "
        "($.eventName=AttachGroupPolicy) || ($.eventName=DetachGroupPolicy) }",
    ),
    "4.5": (
        "cloudtrail-config-changes",
        "{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || "
        "($.eventName = DeleteTrail) || ($.eventName = StartLogging) || "
        "($.eventName = StopLogging) }",
    ),
    "4.6": (
        "console-authentication-failures",
        '{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }',
    ),
    "4.7": (
        "cmk-disabled-or-scheduled-deletion",
        "{ ($.eventSource = kms.amazonaws.com) && (($.eventName = DisableKey) || "
        "($.eventName = ScheduleKeyDeletion)) }",
    ),
    "4.8": (
        "s3-bucket-policy-changes",
        "{ ($.eventSource = s3.amazonaws.com) && (($.eventName = PutBucketAcl) || "
        "($.eventName = PutBucketPolicy) || ($.eventName = PutBucketCors) || "
        "($.eventName = PutBucketLifecycle) || ($.eventName = PutBucketReplication) || "
        "($.eventName = DeleteBucketPolicy) || ($.eventName = DeleteBucketCors) || "
        "($.eventName = DeleteBucketLifecycle) || ($.eventName = DeleteBucketReplication)) }",
    ),
    "4.9": (
        "config-changes",
        "{ ($.eventSource = config.amazonaws.com) && (($.eventName = StopConfigurationRecorder) "
        "|| ($.eventName = DeleteDeliveryChannel) || ($.eventName = PutDeliveryChannel) || "
        "($.eventName = PutConfigurationRecorder)) }",
    ),
    "4.10": (
        "security-group-changes",
        "{ ($.eventName = AuthorizeSecurityGroupIngress) || "
        "($.eventName = AuthorizeSecurityGroupEgress) || "
        "($.eventName = RevokeSecurityGroupIngress) || "
        "($.eventName = RevokeSecurityGroupEgress) || ($.eventName = CreateSecurityGroup) || "
        "($.eventName = DeleteSecurityGroup) }",
    ),
    "4.11": (
        "network-acl-changes",
        "{ ($.eventName = CreateNetworkAcl) || ($.eventName = CreateNetworkAclEntry) || "
        "($.eventName = DeleteNetworkAcl) || ($.eventName = DeleteNetworkAclEntry) || "
        "($.eventName = ReplaceNetworkAclEntry) || ($.eventName = ReplaceNetworkAclAssociation) }",
    ),
    "4.12": (
        "network-gateway-changes",
        "{ ($.eventName = CreateCustomerGateway) || ($.eventName = DeleteCustomerGateway) || "
        "($.eventName = AttachInternetGateway) || ($.eventName = CreateInternetGateway) || "
        "($.eventName = DeleteInternetGateway) || ($.eventName = DetachInternetGateway) }",
    ),
    "4.13": (
        "route-table-changes",
        "{ ($.eventSource = ec2.amazonaws.com) && (($.eventName = CreateRoute) || "
        "($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || "
        "($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || "
        "($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable)) }",
    ),
    "4.14": (
        "vpc-changes",
        "{ ($.eventName = CreateVpc) || ($.eventName = DeleteVpc) || "
        "($.eventName = ModifyVpcAttribute) || ($.eventName = AcceptVpcPeeringConnection) || "
        "($.eventName = CreateVpcPeeringConnection) || "
        "($.eventName = DeleteVpcPeeringConnection) || "
        "($.eventName = RejectVpcPeeringConnection) || ($.eventName = AttachClassicLinkVpc) || "
        "($.eventName = DetachClassicLinkVpc) || ($.eventName = DisableVpcClassicLink) || "
        "($.eventName = EnableVpcClassicLink) }",
    ),
    "4.15": (
        "organizations-changes",
        "{ ($.eventSource = organizations.amazonaws.com) && "
        '(($.eventName = "AcceptHandshake") || ($.eventName = "AttachPolicy") || '
        '($.eventName = "CreateAccount") || ($.eventName = "CreateOrganizationalUnit") || '
        '($.eventName = "CreatePolicy") || ($.eventName = "DeclineHandshake") || '
        '($.eventName = "DeleteOrganization") || ($.eventName = "DeleteOrganizationalUnit") || '
        '($.eventName = "DeletePolicy") || ($.eventName = "DetachPolicy") || '
        '($.eventName = "DisablePolicyType") || ($.eventName = "EnablePolicyType") || '
        '($.eventName = "InviteAccountToOrganization") || '
        '($.eventName = "LeaveOrganization") || ($.eventName = "MoveAccount") || '
        '($.eventName = "RemoveAccountFromOrganization") || ($.eventName = "UpdatePolicy") || '
        '($.eventName = "UpdateOrganizationalUnit")) }',
    ),
}


@dataclass(frozen=True)
class MonitoringArgs:
    name_prefix: str
    account_id: pulumi.Input[str]
    log_group_name: pulumi.Input[str]
    audit_key_arn: pulumi.Input[str]
    subscription: AlarmSubscription
    # id -> (metric, CloudTrail pattern); the core carries the CIS set, a layer its own
    alarms: Mapping[str, tuple[str, str]] = field(default_factory=lambda: dict(CIS_ALARMS))
    describe: str = "CIS AWS Foundations"
    part_prefix: str = "cis"


class Monitoring(pulumi.ComponentResource):
    topic: aws.sns.Topic

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hub:monitoring:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.topic = aws.sns.Topic(
            f"{name}-alarms",
            name=f"{args.name_prefix}-security-alarms",
            kms_master_key_id=args.audit_key_arn,
            opts=child,
        )
        aws.sns.TopicPolicy(
            f"{name}-alarms-policy",
            arn=self.topic.arn,
            policy=policy_document(
                [
                    {
                        "Sid": "CloudWatchAlarmsPublish",
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudwatch.amazonaws.com"},
                        "Action": "sns:Publish",
                        "Resource": self.topic.arn,
                        "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}},
                    },
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "sns:Publish",
                        "Resource": self.topic.arn,
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                ]
            ),
            opts=child,
        )
        aws.sns.TopicSubscription(
            f"{name}-alarms-subscription",
            topic=self.topic.arn,
            protocol=args.subscription.protocol,
            endpoint=args.subscription.endpoint,
            opts=child,
        )
        for cis_id, (metric, pattern) in args.alarms.items():
            part = f"{args.part_prefix}-{cis_id.replace('.', '-')}-{metric}"
            aws.cloudwatch.LogMetricFilter(
                f"{name}-{part}-filter",
                name=f"{args.name_prefix}-{metric}",
                log_group_name=args.log_group_name,
                pattern=pattern,
                metric_transformation={
                    "name": metric,
                    "namespace": METRIC_NAMESPACE,
                    "value": "1",
                },
                opts=child,
            )
            aws.cloudwatch.MetricAlarm(
                f"{name}-{part}-alarm",
                name=f"{args.name_prefix}-{metric}",
                alarm_description=f"{args.describe} {cis_id}: {metric.replace('-', ' ')}",
                namespace=METRIC_NAMESPACE,
                metric_name=metric,
                statistic="Sum",
                period=300,
                evaluation_periods=1,
                threshold=1,
                comparison_operator="GreaterThanOrEqualToThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=[self.topic.arn],
                opts=child,
            )
        self.register_outputs({"alarm_topic_arn": self.topic.arn})
