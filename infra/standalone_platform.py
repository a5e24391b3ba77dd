"""A small platform of one phase without ``hub local up``: what the records walk-through's
``--standalone`` mode, its tests and the records benchmark run the API against.

:func:`standalone_platform` builds, on a moto server (the caller's, or one started here
with :func:`infra.emulator.server.start_moto_server`), only what the sharing service
needs, under fresh names: the four service tables, a user pool shaped like the deployed
one, a versioned shard bucket, an Object Lock audit bucket, a records key and a ledger
signing key. Then the local platform's own seeding (``seed_stack``: a synthetic register,
demo users and patients of the phase's cohort) and the API on a free loopback port,
through the local API gateway built from the program's declaration of the stack (its pool
bound to this one), as ``hub local up`` serves it, its audit ledger over the stage's
trails (``hub:capacity.ledgerTrails``: 4 for phase 2, 8 for phase 3, with the signed
ledger checkpoint over them, as the document's ``ledgerTrails`` says); ``gateway=False``
serves the app directly (``hub local up --direct``), ``serve=False`` serves nothing.
Through the gateway it also serves the web client (``web=True``, from ``web/dist``:
``make web`` builds it) at ``webUrl``: the site's objects as the program declares them, in the
bucket the declared S3 integration reads. It yields a document shaped like ``local.json``
and the API's URL. The full local platform deploys every declared resource instead; this
keeps the tests and the benchmark fast.

With ``messaging=True`` it also runs what ``hub local up``'s messaging step runs: a
Synapse of its own (:class:`app.messaging.local.PlatformHomeserver`), the hub's
application service and outbox dispatcher (:class:`app.local.LocalInternal`), the
notification and security topics and the dead-letter queue; ``messaging`` in the
document says where.

On exit the API stops, the process environment is restored and a moto started here
stops. Everything is synthetic and loopback-only.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from infra.emulator.hub import hub_ledger_trails
from infra.emulator.local import cohort_ids
from infra.emulator.provision import Context
from infra.emulator.record import DeploymentRecord
from infra.emulator.seed import seed_stack
from infra.emulator.server import (
    EMULATOR_CREDENTIALS,
    REGION,
    free_port,
    quiet_moto_logs,
    start_moto_server,
)
from infra.stage import STACK_PHASES

STANDALONE_STACK = "phase1-specialist"


@contextmanager
def standalone_platform(
    endpoint: str | None = None,
    stack: str = STANDALONE_STACK,
    *,
    gateway: bool = True,
    serve: bool = True,
    sign_inline: bool = True,
    messaging: bool = False,
    web: bool = False,
    ledger_trails: int | None = None,
) -> Iterator[tuple[dict[str, Any], str]]:
    """A one-phase platform on ``endpoint`` (or a moto started here); yields
    (local.json-shaped document, API base URL; empty when ``serve`` is off).
    ``ledger_trails``: the ledger's trails instead of the stage's (the load benchmark
    compares them on one machine in one sitting)."""
    import tempfile
    from pathlib import Path

    import boto3

    from app import local

    server = None
    if endpoint is None:
        server, endpoint = start_moto_server()
    quiet_moto_logs()
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", *EMULATOR_CREDENTIALS)}
    os.environ.update(EMULATOR_CREDENTIALS)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    # moto checks TOTP codes (against the secret it hands out) only when asked to.
    os.environ.setdefault("MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP", "true")
    api: Any = None
    homeserver: Any = None
    internal: Any = None
    try:
        session = boto3.session.Session(region_name=REGION)
        prefix = f"standalone-{uuid.uuid4().hex[:8]}"
        if messaging:
            from app.messaging.local import PlatformHomeserver

            state = Path(tempfile.mkdtemp(prefix="hub-standalone-"))
            homeserver = PlatformHomeserver(state / "messaging")
            homeserver.start_in_background()
        outputs = _service_resources(session, prefix)
        outputs.update(_intake_resources(stack, outputs["userPoolId"], prefix, endpoint))
        _switch_on_intake(session, stack, outputs)
        if messaging:
            outputs.update(_notification_resources(session, prefix))
        record = DeploymentRecord(
            stack=stack,
            phase=STACK_PHASES[stack],
            region=REGION,
            account_id="",
            endpoint_url=endpoint,
            target="emulator",
            deployed_at="",
            program_version="",
            release="",
            outputs=outputs,
            resources=[],
            gaps=[],
        )
        # One phase on its own is a hub of its own: it gets the hub's auditor and
        # platform admin whether its stage is the core or a layer.
        seeded = seed_stack(record, cohort_ids(stack), Context(endpoint, REGION), hub_staff=True)
        document: dict[str, Any] = {
            "emulatorEndpoint": endpoint,
            "stacks": {stack: {"phase": STACK_PHASES[stack], "outputs": outputs}},
            # its own stage's trails: one phase alone is a hub of its own
            "ledgerTrails": ledger_trails or hub_ledger_trails([stack]),
            "demoUsers": [u.to_json() for u in seeded.users],
            "demoPatients": {stack: seeded.patients},
            "synthetic": True,
        }
        if homeserver is not None:
            homeserver.wait_ready()
            document["messaging"] = {
                **homeserver.document(),
                "deviceStore": str(homeserver.data_dir / "hub-device"),
            }
            internal = local.LocalInternal(
                local.settings_from_local_json(document, stack), homeserver.appservice_port
            )
            internal.start()
        if not serve:
            document["apiBaseUrl"] = ""
        elif gateway:
            from app.main import lambda_handler_for
            from infra.emulator.gateway import LocalGateway, record_from_program

            declared = record_from_program(
                stack,
                user_pool_id=outputs["userPoolId"],
                user_pool_client_id=outputs["userPoolClientIds"][0],
                endpoint_url=endpoint,
            )
            stand_ins: dict[str, str] = {}
            if web:
                stand_ins = _publish_site(session, declared, outputs, endpoint)
            # ``sign_inline`` off: heads are not signed per response (the load benchmark's
            # comparison of what inline signing costs under concurrency).
            handler = lambda_handler_for(local.local_app(document, stack), sign_inline=sign_inline)
            api = LocalGateway(declared, handler, aws_endpoints=stand_ins)
            document["apiBaseUrl"] = api.start(port=free_port())
            if web:
                document["webUrl"] = f"{document['apiBaseUrl']}/web/"
        else:
            api = local.LocalApi(document, stack, port=free_port())
            document["apiBaseUrl"] = api.start()
        yield document, document["apiBaseUrl"]
    finally:
        if api is not None:
            api.stop()
        if internal is not None:
            internal.stop()
        if homeserver is not None:
            import shutil

            homeserver.stop()
            shutil.rmtree(homeserver.data_dir.parent, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if server is not None:
            server.stop()


def _publish_site(
    session: Any, declared: DeploymentRecord, outputs: dict[str, Any], endpoint: str
) -> dict[str, str]:
    """Put the web client's site where the declared S3 integration reads it; returns the
    emulator origins standing in for the AWS endpoints the site names."""
    from infra.components.identity import ACCESS_TOKEN_MINUTES
    from infra.emulator.gateway.declared import DeclaredApi
    from infra.emulator.web_site import aws_stand_ins, publish, site_objects

    reads = [m.s3_read for m in DeclaredApi.from_record(declared).methods.values() if m.s3_read]
    buckets = {r.bucket for r in reads}
    if len(buckets) != 1:
        raise RuntimeError(f"expected the site in one bucket, the program declares {buckets}")
    bucket = buckets.pop()
    s3 = session.client("s3")
    # another standalone platform on this moto may have published the same site
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    objects = site_objects(
        region=REGION,
        shard_bucket=outputs["shardBucketName"],
        user_pool_id=outputs["userPoolId"],
        client_id=outputs["userPoolClientIds"][0],
        token_seconds=ACCESS_TOKEN_MINUTES * 60,
    )
    publish(s3, bucket, objects)
    return aws_stand_ins(
        REGION, outputs["shardBucketName"], cognito_endpoint=endpoint, s3_endpoint=endpoint
    )


def _service_resources(session: Any, prefix: str) -> dict[str, Any]:
    """The resources the service reads, named as stack outputs name them."""
    from app import local

    tables = {name: f"{prefix}-{name}" for name in local.TABLE_KEYS}
    local.create_service_tables(session.client("dynamodb"), tables)
    pool_id, client_id = local.create_user_pool(session.client("cognito-idp"), prefix)
    s3 = session.client("s3")
    location = {"LocationConstraint": REGION}
    shards = f"{prefix}-shards"
    s3.create_bucket(Bucket=shards, CreateBucketConfiguration=location)
    s3.put_bucket_versioning(Bucket=shards, VersioningConfiguration={"Status": "Enabled"})
    audit = f"{prefix}-audit"  # ledger checkpoints, under Object Lock as deployed
    s3.create_bucket(
        Bucket=audit, CreateBucketConfiguration=location, ObjectLockEnabledForBucket=True
    )
    kms = session.client("kms")
    records_key = kms.create_key(Description=f"{prefix} records")["KeyMetadata"]["Arn"]
    signing_key = kms.create_key(
        Description=f"{prefix} ledger signing", KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY"
    )["KeyMetadata"]["Arn"]
    return {
        "userPoolId": pool_id,
        "userPoolClientIds": [client_id],
        "issuer": f"https://cognito-idp.{REGION}.amazonaws.com/{pool_id}",
        "tableNames": tables,
        "shardBucketName": shards,
        "recordsKeyArn": records_key,
        "signingKeyArn": signing_key,
        "auditBucketName": audit,
    }


def _intake_resources(stack: str, pool_id: str, prefix: str, endpoint: str) -> dict[str, Any]:
    """Community-care intake where the stack's stage turns it on: the pool's domain, and
    the resource server and clinic systems' app clients exactly as the program declares
    them (its declaration, provisioned by the emulator's own provisioners on this pool),
    named as stack outputs name them (``intakeClients``, ``intakeDomain``)."""
    from infra.config_source import read_stage_file, stage_from_config
    from infra.emulator.gaps import RESOURCE_SERVER, USER_POOL_CLIENT
    from infra.emulator.gateway import record_from_program
    from infra.emulator.provision import Declared, provisioner_for

    stage, _ = stage_from_config(stack, read_stage_file(stack))
    if not stage.features.community_care_intake:
        return {}
    declared = record_from_program(stack, user_pool_id=pool_id, endpoint_url=endpoint)
    ctx = Context(endpoint, REGION)
    domain = f"{prefix}-auth"
    ctx.client("cognito-idp").create_user_pool_domain(Domain=domain, UserPoolId=pool_id)
    # The resources of the program's intake component (infra/components/intake.py).
    intake = [r for r in declared.resources if r.component == "intake"]
    if not any(r.type == RESOURCE_SERVER for r in intake):
        # A later layer's clients stand under phase 2's resource server (its layer's).
        below = record_from_program(
            "phase2-hospital-authority", user_pool_id=pool_id, endpoint_url=endpoint
        )
        intake += [r for r in below.resources if r.type == RESOURCE_SERVER]
    clients: dict[str, str] = {}
    # The resource server first: a client may be granted only scopes it defines.
    for r in sorted(intake, key=lambda r: r.type != RESOURCE_SERVER):
        inputs = {**r.inputs, "userPoolId": pool_id}
        made = provisioner_for(r.type, r.name).ensure(
            ctx, Declared(r.type, r.name, inputs, False, None)
        )
        if r.type == USER_POOL_CLIENT:
            clients[str(inputs["name"])] = made.id
    prefix_of_stage = f"{stage.name_prefix}-intake-"
    return {
        "intakeDomain": domain,
        "intakeClients": [
            {
                "name": s.name,
                "clientId": clients[f"{prefix_of_stage}{s.name}"],
                "institutionId": s.institution_id,
            }
            for s in stage.intake_systems
        ],
    }


def _switch_on_intake(session: Any, stack: str, outputs: dict[str, Any]) -> None:
    """Where the stage turns community-care intake on, the stack's layer switch as its
    deploy writes it (``infra/components/layer_switch.py``): the service accepts its
    clinic systems only while the switch lists them."""
    if not outputs.get("intakeClients"):
        return
    from infra.components.layer_switch import LayerSwitchArgs, switch_item
    from infra.config_source import read_stage_file, stage_from_config

    stage, _ = stage_from_config(stack, read_stage_file(stack))
    table = str(outputs["tableNames"]["institutions"])
    args = LayerSwitchArgs(stack, stage.phase, table, stage.features, stage.institution_ids())
    intake = [str(c["clientId"]) for c in outputs["intakeClients"]]
    session.client("dynamodb").put_item(TableName=table, Item=switch_item(args, (), intake))


def _notification_resources(session: Any, prefix: str) -> dict[str, Any]:
    """The outbox dispatcher's destinations, named as stack outputs name them."""
    sns = session.client("sns")
    notifications = sns.create_topic(Name=f"{prefix}-notifications")["TopicArn"]
    security = sns.create_topic(Name=f"{prefix}-security-alarms")["TopicArn"]
    queue = session.client("sqs").create_queue(QueueName=f"{prefix}-outbox-dlq")["QueueUrl"]
    return {
        "notificationTopicArn": notifications,
        "securityTopicArn": security,
        "outboxDeadLetterQueueUrl": queue,
    }
