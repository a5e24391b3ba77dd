"""Community-care intake (phase 2 on): the machine-to-machine channel clinic management
systems submit records through, declared by the layers on the core's user pool.

Guarantees:
- the user pool has a resource server ``hub-intake`` with one scope, ``records.write``
  (``app.intake.scopes``), declared by phase 2's layer (``resource_server=True``); a
  later layer adds only its systems' clients under it; nothing else grants that scope;
- each submitting system has its own confidential app client (a generated secret) whose
  only OAuth flow is ``client_credentials`` and whose only scope is the intake scope: no
  user sign-in flow (no SRP, no password, no refresh token use), no identity provider,
  no callback URL; its access tokens live ``ACCESS_TOKEN_MINUTES`` like the doctors';
- the API admits these tokens on ``POST /intake/messages`` only (the sharing service
  declares that method with the intake scope; every other method requires the users'
  scopes, which a client-credentials token never carries);
- which institution a system submits for is data: the stage names it, the seeding maps
  each client id to it in the institutions table through the operator channel, and the
  service reads it there on every request (never from the token or the message).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from app.intake.scopes import INTAKE_RESOURCE_SERVER, INTAKE_WRITE_SCOPE, INTAKE_WRITE_SCOPE_NAME
from infra.components.identity import ACCESS_TOKEN_MINUTES

CLIENT_CREDENTIALS = "client_credentials"


@dataclass(frozen=True)
class IntakeSystemArgs:
    name: str
    institution_id: str


@dataclass(frozen=True)
class IntakeArgs:
    name_prefix: str
    user_pool_id: pulumi.Input[str]
    systems: Sequence[IntakeSystemArgs]
    # Declare the pool's resource server (phase 2's layer); False: it stands already.
    resource_server: bool = True


class Intake(pulumi.ComponentResource):
    """The intake resource server and one client-credentials app client per system."""

    resource_server: aws.cognito.ResourceServer | None
    clients: dict[str, aws.cognito.UserPoolClient]

    def __init__(self, name: str, args: IntakeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hub:intake:Intake", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._systems = list(args.systems)
        self.resource_server = None
        if args.resource_server:
            self.resource_server = self._resource_server(name, args, child)
        self.clients = {system.name: self._client(name, args, system) for system in args.systems}
        self.register_outputs(
            {
                "resourceServer": INTAKE_RESOURCE_SERVER,
                "clientIds": {k: c.id for k, c in self.clients.items()},
            }
        )

    @staticmethod
    def _resource_server(
        name: str, args: IntakeArgs, child: pulumi.ResourceOptions
    ) -> aws.cognito.ResourceServer:
        return aws.cognito.ResourceServer(
            f"{name}-resource-server",
            identifier=INTAKE_RESOURCE_SERVER,
            name=f"{args.name_prefix}-intake",
            user_pool_id=args.user_pool_id,
            scopes=[
                {
                    "scope_name": INTAKE_WRITE_SCOPE_NAME,
                    "scope_description": "Submit community-care records (HL7 v2, CDA, FHIR)",
                }
            ],
            opts=child,
        )

    def _client(
        self, name: str, args: IntakeArgs, system: IntakeSystemArgs
    ) -> aws.cognito.UserPoolClient:
        return aws.cognito.UserPoolClient(
            f"{name}-client-{system.name}",
            name=f"{args.name_prefix}-intake-{system.name}",
            user_pool_id=args.user_pool_id,
            # A confidential client: the system authenticates with its secret (HTTP Basic
            # on the token endpoint); nothing else of the pool is open to it.
            generate_secret=True,
            allowed_oauth_flows_user_pool_client=True,
            allowed_oauth_flows=[CLIENT_CREDENTIALS],
            allowed_oauth_scopes=[INTAKE_WRITE_SCOPE],
            explicit_auth_flows=["ALLOW_REFRESH_TOKEN_AUTH"],
            supported_identity_providers=[],
            prevent_user_existence_errors="ENABLED",
            enable_token_revocation=True,
            access_token_validity=ACCESS_TOKEN_MINUTES,
            token_validity_units={"access_token": "minutes"},
            # The scope must exist before a client may be granted it (a later layer's
            # clients: phase 2's layer, deployed first, declared it).
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.resource_server] if self.resource_server else [],
            ),
        )

    def outputs(self) -> list[dict[str, pulumi.Output[str] | str]]:
        """``intakeClients``: each system's name, app client id and institution."""
        return [
            {
                "name": system.name,
                "clientId": self.clients[system.name].id,
                "institutionId": system.institution_id,
            }
            for system in self._systems
        ]
