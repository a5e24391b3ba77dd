"""Messaging: the Matrix homeserver the hub governs, and the hub's functions beside it.

What Synapse needs in ap-east-1, secure by default:

- **a private network**: a VPC with two private subnets (the homeserver's tasks and the
  database; no route to the internet, no NAT: the homeserver federates with nobody and
  reaches AWS only through VPC endpoints for Secrets Manager, ECR, CloudWatch Logs, KMS,
  STS and S3) and two public subnets for the internet-facing load balancer alone;
- **the homeserver on ECS Fargate**: one service in the private subnets, no public IP,
  its image (Synapse, the hub's policy module, ``synapse-s3-storage-provider``) from a
  KMS-encrypted, scan-on-push, immutable-tag ECR repository; its ``homeserver.yaml``
  declared here (:func:`app.messaging.homeserver.deployed_homeserver_config`: closed
  federation, no open registration) and its secrets injected from Secrets Manager;
- **PostgreSQL on RDS**: encrypted with the messaging CMK, TLS enforced
  (``rds.force_ssl``), not publicly accessible, in the private subnets, reachable from
  the homeserver's tasks only, 14 days of backups, deletion protection, its master
  password managed by RDS in Secrets Manager (under the messaging CMK);
- **media on S3** through ``synapse-s3-storage-provider``: a private bucket (SSE-KMS
  under the messaging CMK by default, versioned, public access blocked, TLS only,
  access-logged);
- **secrets in Secrets Manager** (messaging CMK): the application service tokens (shared
  with the hub's functions) and the homeserver's own (signing key, macaroon and form
  secrets). The program declares the secrets, never their values: the operator puts
  them once (``docs/messaging.md``), as RDS does the database password;
- **load balancers with a TLS 1.3 policy** (``ELBSecurityPolicy-TLS13-1-3-2021-06``):
  an internet-facing one that forwards only the client-server and media APIs to the
  homeserver (the admin API and everything else answer 404) and drops invalid headers;
  an internal one in the private subnets, reachable from the homeserver's tasks only,
  in front of the hub's **application service function** (the homeserver's private
  path: ``app.appservice_handler``, authenticated by the homeserver's token);
- **the outbox dispatcher function** (``app.dispatch_handler``), every minute, with an
  SQS dead-letter queue (messaging CMK) for what it cannot deliver; the **notification
  topic** (doctors' off-line notices; messaging CMK, TLS only).

``environment`` (outputs) is what the hub's functions need to reach all this
(``HUB_MATRIX_*``, the topics, the queue); the program adds it to the sharing service's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from app.messaging.appservice import APPSERVICE_ID
from app.messaging.homeserver import (
    CONTAINER_PORT,
    DeployedHomeserver,
    deployed_homeserver_config,
)
from app.messaging.identifiers import HUB_SENDER_LOCALPART, MatrixNames
from infra.components.buckets import access_logging, private_bucket
from infra.components.documents import assume_role_policy, deny_insecure_transport, policy_document
from infra.components.functions import logged_function
from infra.components.keys import KEY_ADMIN_ACTIONS

ALB_TLS13_POLICY = "ELBSecurityPolicy-TLS13-1-3-2021-06"
VPC_CIDR = "10.40.0.0/16"
PRIVATE_SUBNETS = ("10.40.1.0/24", "10.40.2.0/24")
PUBLIC_SUBNETS = ("10.40.101.0/24", "10.40.102.0/24")
INTERFACE_ENDPOINTS = ("secretsmanager", "ecr.api", "ecr.dkr", "logs", "kms", "sts")
POSTGRES_ENGINE_VERSION = "16.4"
POSTGRES_FAMILY = "postgres16"
DATABASE_NAME = "synapse"
DATABASE_USER = "synapse"
BACKUP_RETENTION_DAYS = 14
DISPATCH_SCHEDULE = "rate(1 minute)"
# The client-server and media APIs; nothing else of the homeserver is on the internet.
CLIENT_PATHS = ("/_matrix/client/*", "/_matrix/media/*")
DLQ_RETENTION_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class MessagingArgs:
    name_prefix: str
    region: str
    partition: pulumi.Input[str]
    account_id: pulumi.Input[str]
    # The Matrix server name (user ids end in it) and the hostnames of the two balancers.
    server_name: str
    client_hostname: str
    appservice_hostname: str
    # The hub's functions: their role, bundle and base environment (the API's).
    service_role: aws.iam.Role
    lambda_bundle: str
    function_environment: Mapping[str, pulumi.Input[str]]
    audit_key_arn: pulumi.Input[str]
    security_topic_arn: pulumi.Input[str]
    access_log_bucket: pulumi.Input[str]
    log_retention_days: int
    homeserver_image_tag: str = "synapse-1.163.2"
    availability_zones: Sequence[str] = ("ap-east-1a", "ap-east-1b")


class Messaging(pulumi.ComponentResource):
    key: aws.kms.Key
    vpc: aws.ec2.Vpc
    database: aws.rds.Instance
    media_bucket: aws.s3.Bucket
    appservice_secret: aws.secretsmanager.Secret
    client_balancer: aws.lb.LoadBalancer
    notification_topic: aws.sns.Topic
    dead_letter_queue: aws.sqs.Queue
    environment: dict[str, pulumi.Input[str]]

    def __init__(
        self, name: str, args: MessagingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("hub:messaging:Messaging", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self.names = MatrixNames(args.server_name)

        self.key = self._create_key()
        self._create_network()
        self._create_database()
        self._create_media()
        self._create_secrets()
        self.notification_topic = self._create_notification_topic()
        self.dead_letter_queue = aws.sqs.Queue(
            f"{name}-outbox-dlq",
            name=f"{args.name_prefix}-outbox-dlq",
            kms_master_key_id=self.key.arn,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            opts=self._child,
        )
        self.client_url = f"https://{args.client_hostname}"
        self.appservice_url = f"https://{args.appservice_hostname}"
        self.environment = {
            "HUB_MATRIX_HOMESERVER_URL": self.client_url,
            "HUB_MATRIX_CLIENT_URL": self.client_url,
            "HUB_MATRIX_SERVER_NAME": args.server_name,
            "HUB_MATRIX_APPSERVICE_URL": self.appservice_url,
            "HUB_MATRIX_APPSERVICE_SECRET_ARN": self.appservice_secret.arn,
            "HUB_NOTIFICATION_TOPIC_ARN": self.notification_topic.arn,
            "HUB_SECURITY_TOPIC_ARN": args.security_topic_arn,
            "HUB_OUTBOX_DEAD_LETTER_QUEUE_URL": self.dead_letter_queue.url,
            "HUB_MESSAGING_BOT_STORE": "/tmp/hub-device",  # noqa: S108 - Lambda's only writable dir
        }
        self._grant_hub_functions()
        certificate = self._create_certificate()
        self._create_homeserver(certificate)
        self._create_appservice_path(certificate)
        self._create_dispatcher()
        self.register_outputs(
            {
                "messaging_key_arn": self.key.arn,
                "homeserver_url": self.client_url,
                "database_id": self.database.identifier,
                "media_bucket_name": self.media_bucket.bucket,
                "notification_topic_arn": self.notification_topic.arn,
                "dead_letter_queue_url": self.dead_letter_queue.url,
            }
        )

    # -- key -------------------------------------------------------------------------------

    def _create_key(self) -> aws.kms.Key:
        a = self._args
        root = pulumi.Output.concat("arn:", a.partition, ":iam::", a.account_id, ":root")

        def via(service: str, actions: list[str]) -> dict[str, Any]:
            return {
                "Sid": f"AccountPrincipalsVia{service.split('.')[0].title().replace('-', '')}",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": actions,
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": f"{service}.{a.region}.amazonaws.com",
                        "kms:CallerAccount": a.account_id,
                    }
                },
            }

        data = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"]
        statements: list[dict[str, Any]] = [
            {
                "Sid": "KeyAdministrationOnly",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": KEY_ADMIN_ACTIONS,
                "Resource": "*",
            },
            # The database, its managed password, the media, the secrets, the queue and
            # the topic use the key through their services, for this account only.
            via("rds", [*data, "kms:CreateGrant", "kms:DescribeKey"]),
            via("secretsmanager", [*data, "kms:CreateGrant", "kms:DescribeKey"]),
            via("s3", ["kms:Decrypt", "kms:GenerateDataKey"]),
            via("sqs", ["kms:Decrypt", "kms:GenerateDataKey"]),
            via("sns", ["kms:Decrypt", "kms:GenerateDataKey"]),
        ]
        key = aws.kms.Key(
            f"{self._name}-key",
            description="Health Hub messaging: homeserver database, media, secrets, queue",
            customer_master_key_spec="SYMMETRIC_DEFAULT",
            key_usage="ENCRYPT_DECRYPT",
            enable_key_rotation=True,
            rotation_period_in_days=365,
            deletion_window_in_days=30,
            policy=policy_document(statements),
            tags={"hub:concern": "messaging"},
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        aws.kms.Alias(
            f"{self._name}-key-alias",
            name=f"alias/{a.name_prefix}-messaging",
            target_key_id=key.key_id,
            opts=self._child,
        )
        return key

    # -- network ---------------------------------------------------------------------------

    def _create_network(self) -> None:
        a, n = self._args, self._name
        self.vpc = aws.ec2.Vpc(
            f"{n}-vpc",
            cidr_block=VPC_CIDR,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": f"{a.name_prefix}-messaging"},
            opts=self._child,
        )
        private_routes = aws.ec2.RouteTable(
            f"{n}-private-routes", vpc_id=self.vpc.id, opts=self._child
        )
        public_routes = aws.ec2.RouteTable(
            f"{n}-public-routes", vpc_id=self.vpc.id, opts=self._child
        )
        gateway = aws.ec2.InternetGateway(f"{n}-igw", vpc_id=self.vpc.id, opts=self._child)
        aws.ec2.Route(
            f"{n}-public-default-route",
            route_table_id=public_routes.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=gateway.id,
            opts=self._child,
        )
        self.private_subnets: list[aws.ec2.Subnet] = []
        self.public_subnets: list[aws.ec2.Subnet] = []
        for index, zone in enumerate(a.availability_zones):
            self.private_subnets.append(
                self._subnet("private", index, zone, PRIVATE_SUBNETS[index], private_routes)
            )
            self.public_subnets.append(
                self._subnet("public", index, zone, PUBLIC_SUBNETS[index], public_routes)
            )

        self.client_lb_sg = self._security_group(
            "client-lb", "Internet clients to the homeserver (TLS 1.3)", [("0.0.0.0/0", 443)]
        )
        self.homeserver_sg = self._security_group(
            "homeserver", "The homeserver's tasks", [(self.client_lb_sg, CONTAINER_PORT)]
        )
        self.appservice_lb_sg = self._security_group(
            "appservice-lb",
            "The homeserver to the hub's application service",
            [(self.homeserver_sg, 443)],
        )
        self.database_sg = self._security_group(
            "database", "The homeserver to its database", [(self.homeserver_sg, 5432)]
        )
        endpoints_sg = self._security_group(
            "endpoints", "The homeserver to AWS APIs", [(self.homeserver_sg, 443)]
        )
        for service in INTERFACE_ENDPOINTS:
            aws.ec2.VpcEndpoint(
                f"{n}-endpoint-{service.replace('.', '-')}",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{a.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in self.private_subnets],
                security_group_ids=[endpoints_sg.id],
                opts=self._child,
            )
        aws.ec2.VpcEndpoint(
            f"{n}-endpoint-s3",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{a.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[private_routes.id],
            opts=self._child,
        )

    def _subnet(
        self, tier: str, index: int, zone: str, cidr: str, routes: aws.ec2.RouteTable
    ) -> aws.ec2.Subnet:
        """The ``tier`` ("private" or "public") subnet ``index`` in ``zone``, on ``routes``."""
        subnet = aws.ec2.Subnet(
            f"{self._name}-{tier}-{index}",
            vpc_id=self.vpc.id,
            cidr_block=cidr,
            availability_zone=zone,
            # Only the load balancer lives in a public one; nothing gets a public address.
            map_public_ip_on_launch=False,
            tags={"Name": f"{self._args.name_prefix}-messaging-{tier}-{index}"},
            opts=self._child,
        )
        aws.ec2.RouteTableAssociation(
            f"{self._name}-{tier}-{index}-routes",
            subnet_id=subnet.id,
            route_table_id=routes.id,
            opts=self._child,
        )
        return subnet

    def _security_group(
        self,
        part: str,
        description: str,
        ingress: Sequence[tuple[str | aws.ec2.SecurityGroup, int]],
    ) -> aws.ec2.SecurityGroup:
        rules: list[aws.ec2.SecurityGroupIngressArgsDict] = []
        for source, port in ingress:
            rule: aws.ec2.SecurityGroupIngressArgsDict = {
                "protocol": "tcp",
                "from_port": port,
                "to_port": port,
            }
            if isinstance(source, str):
                rule["cidr_blocks"] = [source]
            else:
                rule["security_groups"] = [source.id]
            rules.append(rule)
        return aws.ec2.SecurityGroup(
            f"{self._name}-{part}-sg",
            name=f"{self._args.name_prefix}-messaging-{part}",
            description=description,
            vpc_id=self.vpc.id,
            ingress=rules,
            egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": [VPC_CIDR]}],
            opts=self._child,
        )

    # -- database, media, secrets ------------------------------------------------------------

    def _create_database(self) -> None:
        a, n = self._args, self._name
        subnets = aws.rds.SubnetGroup(
            f"{n}-db-subnets",
            name=f"{a.name_prefix}-messaging-db",
            subnet_ids=[s.id for s in self.private_subnets],
            opts=self._child,
        )
        parameters = aws.rds.ParameterGroup(
            f"{n}-db-parameters",
            name=f"{a.name_prefix}-messaging-db",
            family=POSTGRES_FAMILY,
            description="Homeserver database: TLS only",
            parameters=[{"name": "rds.force_ssl", "value": "1", "apply_method": "immediate"}],
            opts=self._child,
        )
        self.database = aws.rds.Instance(
            f"{n}-db",
            identifier=f"{a.name_prefix}-messaging",
            engine="postgres",
            engine_version=POSTGRES_ENGINE_VERSION,
            instance_class="db.t4g.medium",
            allocated_storage=50,
            storage_type="gp3",
            db_name=DATABASE_NAME,
            username=DATABASE_USER,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=self.key.arn,
            storage_encrypted=True,
            kms_key_id=self.key.arn,
            publicly_accessible=False,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[self.database_sg.id],
            parameter_group_name=parameters.name,
            backup_retention_period=BACKUP_RETENTION_DAYS,
            deletion_protection=True,
            multi_az=True,
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            skip_final_snapshot=False,
            final_snapshot_identifier=f"{a.name_prefix}-messaging-final",
            tags={"hub:concern": "messaging"},
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )

    def _create_media(self) -> None:
        a, n = self._args, self._name
        media = private_bucket(
            f"{n}-media",
            bucket_name=pulumi.Output.concat(a.name_prefix, "-messaging-media-", a.account_id),
            kms_key_arn=self.key.arn,
            parent=self,
            purpose="messaging-media",
        )
        self.media_bucket = media.bucket
        aws.s3.BucketPolicy(
            f"{n}-media-policy",
            bucket=media.bucket.id,
            policy=policy_document(deny_insecure_transport(media.bucket.arn)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[media.public_access_block]),
        )
        access_logging(
            f"{n}-media-logging",
            bucket=media.bucket,
            log_bucket=a.access_log_bucket,
            prefix="messaging-media/",
            parent=self,
        )

    def _create_secrets(self) -> None:
        self.appservice_secret = self._secret(
            "appservice",
            "appservice-tokens",
            'Application service tokens: {"as_token": ..., "hs_token": ...}',
        )
        self.homeserver_secret = self._secret(
            "homeserver",
            "homeserver",
            "Homeserver secrets: signing_key, macaroon_secret_key, form_secret",
        )

    def _secret(self, part: str, name: str, description: str) -> aws.secretsmanager.Secret:
        """A secret under the messaging CMK, recoverable for 30 days (the operator puts its
        value; the program never does)."""
        return aws.secretsmanager.Secret(
            f"{self._name}-{part}-secret",
            name=f"{self._args.name_prefix}/messaging/{name}",
            description=description,
            kms_key_id=self.key.arn,
            recovery_window_in_days=30,
            opts=self._child,
        )

    def _create_notification_topic(self) -> aws.sns.Topic:
        a, n = self._args, self._name
        topic = aws.sns.Topic(
            f"{n}-notifications",
            name=f"{a.name_prefix}-doctor-notifications",
            kms_master_key_id=self.key.arn,
            opts=self._child,
        )
        aws.sns.TopicPolicy(
            f"{n}-notifications-policy",
            arn=topic.arn,
            policy=policy_document(
                [
                    {
                        "Sid": "HubServicePublishes",
                        "Effect": "Allow",
                        "Principal": {"AWS": a.service_role.arn},
                        "Action": ["sns:Publish", "sns:Subscribe"],
                        "Resource": topic.arn,
                    },
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "sns:Publish",
                        "Resource": topic.arn,
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                ]
            ),
            opts=self._child,
        )
        return topic

    def _grant_hub_functions(self) -> None:
        """What the hub's functions (the API, the application service, the dispatcher)
        may do with messaging: read the tokens, notify, alarm, dead-letter."""
        a = self._args
        statements: list[dict[str, Any]] = [
            {
                "Sid": "ReadApplicationServiceTokens",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": self.appservice_secret.arn,
            },
            {
                "Sid": "DecryptTokensViaSecretsManager",
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": self.key.arn,
                "Condition": {
                    "StringEquals": {"kms:ViaService": f"secretsmanager.{a.region}.amazonaws.com"}
                },
            },
            {
                "Sid": "NotifyAndAlarm",
                "Effect": "Allow",
                "Action": ["sns:Publish", "sns:Subscribe"],
                "Resource": [self.notification_topic.arn, a.security_topic_arn],
            },
            {
                # Off-line notices by SMS go to a phone number, not a topic.
                "Sid": "NotifyBySms",
                "Effect": "Allow",
                "Action": ["sns:Publish"],
                "Resource": "*",
            },
            {
                "Sid": "EncryptedTopicsAndQueue",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": [self.key.arn, a.audit_key_arn],
                "Condition": {
                    "ForAnyValue:StringEquals": {
                        "kms:ViaService": [
                            f"sns.{a.region}.amazonaws.com",
                            f"sqs.{a.region}.amazonaws.com",
                        ]
                    }
                },
            },
            {
                "Sid": "DeadLetters",
                "Effect": "Allow",
                "Action": ["sqs:SendMessage"],
                "Resource": self.dead_letter_queue.arn,
            },
        ]
        aws.iam.RolePolicy(
            f"{self._name}-service-policy",
            role=a.service_role.id,
            policy=policy_document(statements),
            opts=self._child,
        )

    # -- the homeserver ----------------------------------------------------------------------

    def _create_certificate(self) -> aws.acm.Certificate:
        a = self._args
        return aws.acm.Certificate(
            f"{self._name}-certificate",
            domain_name=a.client_hostname,
            subject_alternative_names=[a.appservice_hostname],
            validation_method="DNS",
            opts=self._child,
        )

    def homeserver_config(self) -> pulumi.Output[str]:
        """The declared ``homeserver.yaml`` (JSON), as the task receives it."""
        a = self._args
        return pulumi.Output.all(self.database.address, self.media_bucket.bucket).apply(
            lambda values: json.dumps(
                deployed_homeserver_config(
                    DeployedHomeserver(
                        server_name=a.server_name,
                        public_baseurl=f"https://{a.client_hostname}/",
                        database_host=str(values[0]),
                        database_name=DATABASE_NAME,
                        database_user=DATABASE_USER,
                        media_bucket=str(values[1]),
                        region=a.region,
                    )
                ),
                sort_keys=True,
            )
        )

    def registration_document(self) -> str:
        """The application service registration without its tokens (the task adds them)."""
        return json.dumps(
            {
                "id": APPSERVICE_ID,
                "url": self.appservice_url,
                "sender_localpart": HUB_SENDER_LOCALPART,
                "rate_limited": False,
                "receive_ephemeral": False,
                "namespaces": {
                    "users": [
                        {"exclusive": True, "regex": self.names.user_namespace()},
                        {"exclusive": True, "regex": self.names.cards_namespace()},
                    ],
                    "aliases": [{"exclusive": True, "regex": self.names.alias_namespace()}],
                    "rooms": [],
                },
            },
            sort_keys=True,
        )

    def _homeserver_role(self, part: str, statements: list[dict[str, Any]]) -> aws.iam.Role:
        """A role only the homeserver's ECS tasks (in this account) assume, with
        ``statements`` as its inline policy."""
        a, n = self._args, self._name
        role = aws.iam.Role(
            f"{n}-{part}-role",
            name=f"{a.name_prefix}-homeserver-{part}",
            assume_role_policy=assume_role_policy(
                "ecs-tasks.amazonaws.com", source_account=a.account_id
            ),
            opts=self._child,
        )
        aws.iam.RolePolicy(
            f"{n}-{part}-policy",
            role=role.id,
            policy=policy_document(statements),
            opts=self._child,
        )
        return role

    def _create_homeserver(self, certificate: aws.acm.Certificate) -> None:
        a, n = self._args, self._name
        repository = aws.ecr.Repository(
            f"{n}-image",
            name=f"{a.name_prefix}-homeserver",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": self.key.arn}],
            opts=self._child,
        )
        cluster = aws.ecs.Cluster(
            f"{n}-cluster",
            name=f"{a.name_prefix}-messaging",
            settings=[{"name": "containerInsights", "value": "enabled"}],
            opts=self._child,
        )
        logs = aws.cloudwatch.LogGroup(
            f"{n}-homeserver-logs",
            name=f"/hub/{a.name_prefix}/homeserver",
            kms_key_id=a.audit_key_arn,
            retention_in_days=a.log_retention_days,
            opts=self._child,
        )
        secrets = [
            self.appservice_secret.arn,
            self.homeserver_secret.arn,
            self.database.master_user_secrets.apply(
                lambda s: str(s[0]["secret_arn"]) if s else "arn:aws:secretsmanager:::none"
            ),
        ]
        execution_role = self._homeserver_role(
            "execution",
            [
                {
                    "Sid": "PullImage",
                    "Effect": "Allow",
                    "Action": [
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer",
                        "ecr:BatchCheckLayerAvailability",
                    ],
                    "Resource": repository.arn,
                },
                {
                    "Sid": "AuthenticateToRegistry",
                    "Effect": "Allow",
                    "Action": ["ecr:GetAuthorizationToken"],
                    "Resource": "*",
                },
                {
                    "Sid": "WriteLogs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": pulumi.Output.concat(logs.arn, ":*"),
                },
                {
                    "Sid": "InjectSecrets",
                    "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue"],
                    "Resource": secrets,
                },
                {
                    "Sid": "DecryptSecrets",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt"],
                    "Resource": [self.key.arn, a.audit_key_arn],
                    "Condition": {
                        "StringEquals": {
                            "kms:ViaService": f"secretsmanager.{a.region}.amazonaws.com"
                        }
                    },
                },
            ],
        )
        task_role = self._homeserver_role(
            "task",
            [
                {
                    "Sid": "MediaObjects",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    "Resource": pulumi.Output.concat(self.media_bucket.arn, "/*"),
                },
                {
                    "Sid": "MediaKeyViaS3",
                    "Effect": "Allow",
                    "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                    "Resource": self.key.arn,
                    "Condition": {
                        "StringEquals": {"kms:ViaService": f"s3.{a.region}.amazonaws.com"}
                    },
                },
            ],
        )
        definition = pulumi.Output.all(
            repository.repository_url,
            self.homeserver_config(),
            logs.name,
            *secrets,
        ).apply(
            lambda v: json.dumps(
                [
                    {
                        "name": "synapse",
                        "image": f"{v[0]}:{a.homeserver_image_tag}",
                        "essential": True,
                        "command": ["python", "-m", "app.messaging.container"],
                        "portMappings": [{"containerPort": CONTAINER_PORT, "protocol": "tcp"}],
                        "environment": [
                            {"name": "HUB_HOMESERVER_CONFIG", "value": v[1]},
                            {
                                "name": "HUB_APPSERVICE_REGISTRATION",
                                "value": self.registration_document(),
                            },
                        ],
                        "secrets": [
                            {"name": "HUB_APPSERVICE_TOKENS", "valueFrom": v[3]},
                            {"name": "HUB_HOMESERVER_SECRETS", "valueFrom": v[4]},
                            {"name": "PGPASSWORD", "valueFrom": f"{v[5]}:password::"},
                        ],
                        "logConfiguration": {
                            "logDriver": "awslogs",
                            "options": {
                                "awslogs-group": v[2],
                                "awslogs-region": a.region,
                                "awslogs-stream-prefix": "synapse",
                            },
                        },
                    }
                ],
                sort_keys=True,
            )
        )
        task = aws.ecs.TaskDefinition(
            f"{n}-task",
            family=f"{a.name_prefix}-homeserver",
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu="1024",
            memory="2048",
            execution_role_arn=execution_role.arn,
            task_role_arn=task_role.arn,
            container_definitions=definition,
            runtime_platform={"operating_system_family": "LINUX", "cpu_architecture": "ARM64"},
            opts=self._child,
        )
        self.client_balancer = self._load_balancer(
            "client", "matrix", self.public_subnets, self.client_lb_sg, internal=False
        )
        targets = aws.lb.TargetGroup(
            f"{n}-homeserver-targets",
            name=f"{a.name_prefix}-homeserver",
            port=CONTAINER_PORT,
            protocol="HTTP",
            target_type="ip",
            vpc_id=self.vpc.id,
            health_check={"path": "/health", "matcher": "200"},
            opts=self._child,
        )
        listener = self._https_listener(
            "client",
            self.client_balancer,
            certificate,
            {
                "type": "fixed-response",
                "fixed_response": {
                    "content_type": "application/json",
                    "status_code": "404",
                    "message_body": '{"errcode": "M_UNRECOGNIZED"}',
                },
            },
        )
        aws.lb.ListenerRule(
            f"{n}-client-paths",
            listener_arn=listener.arn,
            priority=10,
            conditions=[{"path_pattern": {"values": list(CLIENT_PATHS)}}],
            actions=[{"type": "forward", "target_group_arn": targets.arn}],
            opts=self._child,
        )
        aws.ecs.Service(
            f"{n}-homeserver",
            name=f"{a.name_prefix}-homeserver",
            cluster=cluster.arn,
            task_definition=task.arn,
            desired_count=1,
            launch_type="FARGATE",
            network_configuration={
                "subnets": [s.id for s in self.private_subnets],
                "security_groups": [self.homeserver_sg.id],
                "assign_public_ip": False,
            },
            load_balancers=[
                {
                    "target_group_arn": targets.arn,
                    "container_name": "synapse",
                    "container_port": CONTAINER_PORT,
                }
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[listener]),
        )

    def _load_balancer(
        self,
        part: str,
        name: str,
        subnets: Sequence[aws.ec2.Subnet],
        security_group: aws.ec2.SecurityGroup,
        *,
        internal: bool,
    ) -> aws.lb.LoadBalancer:
        """An application load balancer that drops invalid header fields."""
        return aws.lb.LoadBalancer(
            f"{self._name}-{part}-lb",
            name=f"{self._args.name_prefix}-{name}",
            internal=internal,
            load_balancer_type="application",
            subnets=[s.id for s in subnets],
            security_groups=[security_group.id],
            drop_invalid_header_fields=True,
            opts=self._child,
        )

    def _https_listener(
        self,
        part: str,
        balancer: aws.lb.LoadBalancer,
        certificate: aws.acm.Certificate,
        default_action: aws.lb.ListenerDefaultActionArgsDict,
    ) -> aws.lb.Listener:
        """A balancer's one way in: HTTPS on 443 under the TLS 1.3 policy."""
        return aws.lb.Listener(
            f"{self._name}-{part}-listener",
            load_balancer_arn=balancer.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=ALB_TLS13_POLICY,
            certificate_arn=certificate.arn,
            default_actions=[default_action],
            opts=self._child,
        )

    # -- the hub's private path and its dispatcher ---------------------------------------------

    def _hub_function(
        self, part: str, function_name: str, handler: str, **tuning: Any
    ) -> aws.lambda_.Function:
        """One of the hub's functions beside the homeserver: the hub's role and bundle, the
        API's environment with messaging's, 1 GiB; ``tuning`` is the rest of
        :func:`logged_function`'s (timeout, concurrency, dead letters)."""
        a = self._args
        return logged_function(
            f"{self._name}-{part}-function",
            function_name=f"{a.name_prefix}-{function_name}",
            handler=handler,
            role_arn=a.service_role.arn,
            bundle=a.lambda_bundle,
            environment={**a.function_environment, **self.environment},
            audit_key_arn=a.audit_key_arn,
            log_retention_days=a.log_retention_days,
            parent=self,
            memory_mb=1024,
            **tuning,
        ).function

    def _invoke_permission(
        self,
        part: str,
        function: aws.lambda_.Function,
        principal: str,
        source_arn: pulumi.Input[str],
    ) -> aws.lambda_.Permission:
        """``principal`` may invoke ``function`` on behalf of ``source_arn`` only."""
        return aws.lambda_.Permission(
            f"{self._name}-{part}-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal=principal,
            source_arn=source_arn,
            opts=self._child,
        )

    def _create_appservice_path(self, certificate: aws.acm.Certificate) -> None:
        a, n = self._args, self._name
        function = self._hub_function("appservice", "appservice", "app.appservice_handler.handler")
        balancer = self._load_balancer(
            "appservice", "appservice", self.private_subnets, self.appservice_lb_sg, internal=True
        )
        targets = aws.lb.TargetGroup(
            f"{n}-appservice-targets",
            name=f"{a.name_prefix}-appservice",
            target_type="lambda",
            opts=self._child,
        )
        permission = self._invoke_permission(
            "appservice", function, "elasticloadbalancing.amazonaws.com", targets.arn
        )
        aws.lb.TargetGroupAttachment(
            f"{n}-appservice-target",
            target_group_arn=targets.arn,
            target_id=function.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
        )
        self._https_listener(
            "appservice",
            balancer,
            certificate,
            {"type": "forward", "target_group_arn": targets.arn},
        )

    def _create_dispatcher(self) -> None:
        a, n = self._args, self._name
        function = self._hub_function(
            "dispatcher",
            "outbox-dispatcher",
            "app.dispatch_handler.handler",
            timeout_s=50,
            # One dispatcher at a time: claims make a race harmless, this makes it rare.
            reserved_concurrency=1,
            dead_letter_queue_arn=self.dead_letter_queue.arn,
        )
        schedule = aws.cloudwatch.EventRule(
            f"{n}-dispatch-schedule",
            name=f"{a.name_prefix}-outbox-dispatch",
            schedule_expression=DISPATCH_SCHEDULE,
            opts=self._child,
        )
        self._invoke_permission("dispatch", function, "events.amazonaws.com", schedule.arn)
        aws.cloudwatch.EventTarget(
            f"{n}-dispatch-target",
            rule=schedule.name,
            arn=function.arn,
            opts=self._child,
        )
