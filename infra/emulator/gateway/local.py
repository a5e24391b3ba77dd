"""The local platform's API: a deployed stack's function, served through its gateway.

:func:`serve_stack` is what ``hub local up`` runs (unless ``--direct``): it loads the
stack's deployment record, prepares the function as Lambda would (its *declared*
environment, with ``AWS_ENDPOINT_URL`` pointing at the emulator), imports its declared
handler (``app.lambda_handler.handler``), enrols the pool's doctors in the service's
directory (what a deployment's provisioning does, so summon finds them), and starts a
:class:`LocalGateway` built from the same record.

The handler is imported once per process, like a Lambda execution environment: the
declared environment is this process's environment from then on.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infra.emulator.gateway.declared import DeclaredApi, DeclaredFunction
from infra.emulator.gateway.server import Handler, LocalGateway
from infra.emulator.record import DeploymentRecord

EMULATOR_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "ap-east-1",
}


class StackNotDeployed(RuntimeError):
    pass


def declared_handler(record: DeploymentRecord) -> tuple[DeclaredFunction, str]:
    """The API's function and its declared handler (``module.attribute``)."""
    api = DeclaredApi.from_record(record)
    if len(api.functions) != 1:
        raise ValueError(f"{record.stack}: expected one function behind the API")
    function = api.functions[0]
    resource = next(
        r
        for r in record.of_type("aws:lambda/function:Function")
        if r.state.get("arn") == function.arn
    )
    return function, str(resource.inputs.get("handler") or "app.lambda_handler.handler")


def import_handler(
    record: DeploymentRecord, endpoint: str, environment: Mapping[str, str] | None = None
) -> Handler:
    """The function's handler, imported under its declared environment (with
    ``environment`` over it: what the local platform runs differently, such as the
    homeserver on loopback)."""
    function, handler = declared_handler(record)
    for key, value in EMULATOR_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    os.environ.update(function.environment)
    os.environ.update(environment or {})
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    module_name, _, attribute = handler.rpartition(".")
    module = importlib.import_module(module_name)
    entry: Handler = getattr(module, attribute)
    return entry


def enrol_directory(handler: Any, record: DeploymentRecord) -> None:
    """Enrol the pool's doctors in the service's directory (summon's candidate list)."""
    import boto3

    from app.identity.directory import enrol_user_pool

    services = handler.app.state.services
    cognito = boto3.client("cognito-idp", region_name=record.region)
    enrol_user_pool(
        cognito,
        str(record.outputs["userPoolId"]),
        services.directory,
        services.register,
        services.institutions.repository,
    )


def site_stand_ins(record: DeploymentRecord, endpoint: str) -> dict[str, str]:
    """The emulator origins answering for the AWS endpoints the web client's site names."""
    from infra.emulator.web_site import aws_stand_ins

    shards = str(record.outputs.get("shardBucketName") or "")
    return aws_stand_ins(
        record.region,
        shards,
        cognito_endpoint=record.endpoints.get("cognito-idp") or endpoint,
        s3_endpoint=record.endpoints.get("s3") or endpoint,
    )


def serve_stack(
    state_dir: Path,
    stack: str,
    *,
    endpoint: str,
    host: str = "127.0.0.1",
    port: int = 0,
    environment: Mapping[str, str] | None = None,
) -> LocalGateway:
    """Start ``stack``'s API through its gateway; returns the running gateway.

    Raises:
        StackNotDeployed: the stack has no deployment record under ``state_dir``.
    """
    from infra.emulator.hub import hub_view

    record = DeploymentRecord.load(stack, state_dir)
    if record is None:
        raise StackNotDeployed(f"{stack} has no deployment record under {state_dir}")
    # A layer serves the hub it stands in: the core's API behind the core's web ACL.
    record = hub_view(record, state_dir)
    handler = import_handler(record, endpoint, environment)
    enrol_directory(handler, record)
    gateway = LocalGateway(record, handler, aws_endpoints=site_stand_ins(record, endpoint))
    gateway.start(host, port)
    return gateway
