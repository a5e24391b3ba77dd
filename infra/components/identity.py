"""Identity: the Cognito user pool doctors sign in with, its roles and federation.

Guarantees: TOTP MFA is required; passwords are long and complex; threat protection
(advanced security) is enforced; the pool cannot be deleted by accident; the app
clients use the authorization-code flow (PKCE, public web clients), short token
lifetimes and hide whether a user exists.

No attribute that grants anything (registration number, institution, specialty, roles:
``app.identity.federation.GRANTING_ATTRIBUTES``) is writable by its user. The native
client declares explicit read and write attributes, contact details only. Federated
users sign in through a client of their own (identity providers only, hosted UI, no
``aws.cognito.signin.user.admin`` scope, no password flows): Cognito requires that
client to write the attributes it maps from the providers, and its tokens cannot call
``UpdateUserAttributes``, so only the provider writes them, at each sign-in.

Each provider's attribute mapping carries what the hub's placement of its users needs
(``app.identity.federation``): the registration number always, the hospital code for a
provider covering many hospitals, the group claim when roles come from it. The pre sign-up
trigger refuses a native sign-up carrying a granting attribute and a federated one the
hub cannot place; the pre token generation trigger resolves institution and roles from
the institutions table and adds them as claims. Both run ``app/identity/triggers.py``,
the same resolution the service re-checks on every request. Federation is declared only
when the stage lists providers (phase 2 onwards).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from app.identity.federation import (
    USER_READABLE_ATTRIBUTES,
    USER_WRITABLE_ATTRIBUTES,
    attribute_mapping,
)
from infra.components.documents import assume_role_policy, policy_document
from infra.components.functions import log_group_arn, logged_function
from infra.stage import FederationProvider

ROLE_GROUPS: dict[str, str] = {
    "doctor": "Registered medical practitioner; clinical access through consultation groups",
    "specialist": "Specialist-register practitioner; may be summoned into groups",
    "institution_admin": "Manages the members of one institution; no clinical data",
    "auditor": "Reads audit data and proofs; no clinical data",
    "platform_admin": "Operates the platform; no clinical data by default",
}

CUSTOM_ATTRIBUTES: dict[str, tuple[bool, int, int]] = {
    # name -> (mutable, min length, max length)
    # Legacy: the service no longer reads these (a pool's schema cannot shrink), and no
    # client may write them.
    "mchk_reg_no": (False, 1, 16),
    "institution_id": (True, 2, 40),
    "specialty": (True, 0, 64),
    # What a federated user's identity provider asserts, rewritten at each sign-in (so
    # mutable, as Cognito requires of mapped attributes).
    "idp_reg_no": (True, 0, 16),
    "hospital_code": (True, 0, 16),
    "idp_groups": (True, 0, 2048),
}

PASSWORD_MIN_LENGTH = 14
ACCESS_TOKEN_MINUTES = 15
ID_TOKEN_MINUTES = 15
REFRESH_TOKEN_HOURS = 12

TOKEN_VALIDITY_UNITS: aws.cognito.UserPoolClientTokenValidityUnitsArgsDict = {
    "access_token": "minutes",
    "id_token": "minutes",
    "refresh_token": "hours",
}
# The federated client's tokens: sign-in and profile only, never the self-service scope.
FEDERATED_SCOPES = ["openid", "email", "profile"]


def provider_attribute_mapping(provider: FederationProvider) -> dict[str, str]:
    """What ``provider`` must release, mapped onto the pool's attributes."""
    return attribute_mapping(provider.protocol, provider.mapping().required_claims())


@dataclass(frozen=True)
class IdentityArgs:
    name_prefix: str
    region: str
    partition: pulumi.Input[str]
    account_id: pulumi.Input[str]
    phase: int
    self_registration: bool
    callback_urls: Sequence[str]
    register_table_name: pulumi.Input[str]
    register_table_arn: pulumi.Input[str]
    institutions_table_name: pulumi.Input[str]
    institutions_table_arn: pulumi.Input[str]
    audit_key_arn: pulumi.Input[str]
    lambda_bundle: str
    log_retention_days: int
    federation: Sequence[FederationProvider] = ()
    oidc_client_secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class Identity(pulumi.ComponentResource):
    user_pool: aws.cognito.UserPool
    client: aws.cognito.UserPoolClient
    federated_client: aws.cognito.UserPoolClient | None
    issuer: pulumi.Output[str]

    def __init__(self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hub:identity:Identity", name, None, opts)
        self._name = name
        self._args = args

        pre_sign_up, pre_token = self._create_triggers()
        self.user_pool = self._create_user_pool(pre_sign_up.arn, pre_token.arn)
        for part, function in (("pre-sign-up", pre_sign_up), ("pre-token", pre_token)):
            aws.lambda_.Permission(
                f"{name}-{part}-invoke",
                action="lambda:InvokeFunction",
                function=function.name,
                principal="cognito-idp.amazonaws.com",
                source_arn=self.user_pool.arn,
                source_account=args.account_id,
                opts=pulumi.ResourceOptions(parent=self),
            )
        for precedence, (group, description) in enumerate(ROLE_GROUPS.items()):
            aws.cognito.UserGroup(
                f"{name}-group-{group}",
                name=group,
                user_pool_id=self.user_pool.id,
                description=description,
                precedence=precedence,
                opts=pulumi.ResourceOptions(parent=self),
            )
        providers = self._create_identity_providers()
        self.client = self._create_client()
        self.federated_client = self._create_federated_client(providers) if providers else None
        self.domain = aws.cognito.UserPoolDomain(
            f"{name}-domain",
            domain=pulumi.Output.concat(args.name_prefix, "-auth-", args.account_id),
            user_pool_id=self.user_pool.id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.issuer = pulumi.Output.concat(
            "https://cognito-idp.", args.region, ".amazonaws.com/", self.user_pool.id
        )
        self.register_outputs(
            {
                "user_pool_id": self.user_pool.id,
                "user_pool_arn": self.user_pool.arn,
                "client_id": self.client.id,
                "client_ids": self.client_ids(),
                "issuer": self.issuer,
                "domain": self.domain.domain,
            }
        )

    def client_ids(self) -> list[pulumi.Output[str]]:
        """The app clients users sign in with: native first, federated (if any) second."""
        clients = [self.client] + ([self.federated_client] if self.federated_client else [])
        return [c.id for c in clients]

    def _create_triggers(self) -> tuple[aws.lambda_.Function, aws.lambda_.Function]:
        a = self._args
        function_names = {
            "pre-sign-up": f"{a.name_prefix}-pre-sign-up",
            "pre-token": f"{a.name_prefix}-pre-token",
        }
        log_arns = [
            pulumi.Output.concat(
                log_group_arn(a.region, a.partition, a.account_id, f"/aws/lambda/{fn}"), ":*"
            )
            for fn in function_names.values()
        ]
        role = aws.iam.Role(
            f"{self._name}-triggers-role",
            name=f"{a.name_prefix}-identity-triggers",
            assume_role_policy=assume_role_policy(
                "lambda.amazonaws.com", source_account=a.account_id
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        policy = aws.iam.RolePolicy(
            f"{self._name}-triggers-policy",
            role=role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "ReadRegister",
                        "Effect": "Allow",
                        "Action": ["dynamodb:GetItem"],
                        "Resource": a.register_table_arn,
                    },
                    {
                        # Institutions, affiliations, enrolments, provider mappings.
                        "Sid": "ReadAffiliations",
                        "Effect": "Allow",
                        "Action": ["dynamodb:GetItem", "dynamodb:BatchGetItem"],
                        "Resource": a.institutions_table_arn,
                    },
                    {
                        "Sid": "WriteOwnLogs",
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": log_arns,
                    },
                    {
                        "Sid": "Tracing",
                        "Effect": "Allow",
                        "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                        "Resource": "*",
                    },
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        environment = {
            "HUB_TABLE_REGISTER": a.register_table_name,
            "HUB_TABLE_INSTITUTIONS": a.institutions_table_name,
            "HUB_PHASE": str(a.phase),
            # The core stage's own self-registration (off in phase 1); the layers'
            # switches open it in the one hub (app/identity/triggers.py).
            "HUB_SELF_REGISTRATION": "true" if a.self_registration else "false",
        }
        handlers = {"pre-sign-up": "pre_sign_up", "pre-token": "pre_token_generation"}
        functions = [
            logged_function(
                f"{self._name}-{part}",
                function_name=function_names[part],
                handler=f"app.identity.triggers.{handler}",
                role_arn=role.arn,
                bundle=a.lambda_bundle,
                environment=environment,
                audit_key_arn=a.audit_key_arn,
                log_retention_days=a.log_retention_days,
                parent=self,
                memory_mb=256,
                timeout_s=5,
                depends_on=[policy],
            ).function
            for part, handler in handlers.items()
        ]
        return functions[0], functions[1]

    def _create_user_pool(
        self, pre_sign_up_arn: pulumi.Input[str], pre_token_arn: pulumi.Input[str]
    ) -> aws.cognito.UserPool:
        a = self._args
        schemas: list[aws.cognito.UserPoolSchemaArgsDict] = [
            {
                "name": attr,
                "attribute_data_type": "String",
                "mutable": mutable,
                "developer_only_attribute": False,
                "string_attribute_constraints": {"min_length": str(lo), "max_length": str(hi)},
            }
            for attr, (mutable, lo, hi) in CUSTOM_ATTRIBUTES.items()
        ]
        return aws.cognito.UserPool(
            f"{self._name}-user-pool",
            name=f"{a.name_prefix}-doctors",
            user_pool_tier="PLUS",  # threat protection (advanced security) needs the Plus plan
            mfa_configuration="ON",
            software_token_mfa_configuration={"enabled": True},
            password_policy={
                "minimum_length": PASSWORD_MIN_LENGTH,
                "require_lowercase": True,
                "require_uppercase": True,
                "require_numbers": True,
                "require_symbols": True,
                "temporary_password_validity_days": 1,
                "password_history_size": 12,
            },
            user_pool_add_ons={"advanced_security_mode": "ENFORCED"},
            deletion_protection="ACTIVE",
            # Sign-up is allowed at the pool, and decided as data: the pre sign-up trigger
            # refuses a native sign-up unless self-registration is switched on (phase 3's
            # layer, or the core's stage), and an account that signs up is refused by the
            # service everywhere until approved (docs/identity.md). A layer cannot change
            # the core's pool, so this is how phase 3 opens it and its removal closes it.
            admin_create_user_config={"allow_admin_create_user_only": False},
            auto_verified_attributes=["email"],
            account_recovery_setting={
                "recovery_mechanisms": [{"name": "verified_email", "priority": 1}],
            },
            schemas=schemas,
            lambda_config={
                "pre_sign_up": pre_sign_up_arn,
                "pre_token_generation_config": {
                    "lambda_arn": pre_token_arn,
                    "lambda_version": "V2_0",  # V2 can add claims to access tokens
                },
            },
            tags={"hub:concern": "identity"},
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )

    def _create_identity_providers(self) -> list[aws.cognito.IdentityProvider]:
        a = self._args
        return identity_providers(
            self._name, self.user_pool.id, a.federation, a.oidc_client_secrets, self
        )

    def _create_client(self) -> aws.cognito.UserPoolClient:
        """The native client: password (SRP) and hosted-UI sign-in for pool users, whose
        tokens may call UpdateUserAttributes, so they may write contact details only."""
        a = self._args
        return aws.cognito.UserPoolClient(
            f"{self._name}-web-client",
            name=f"{a.name_prefix}-web",
            user_pool_id=self.user_pool.id,
            generate_secret=False,  # public client: authorization code with PKCE
            allowed_oauth_flows_user_pool_client=True,
            allowed_oauth_flows=["code"],
            allowed_oauth_scopes=["openid", "email", "profile"],
            callback_urls=list(a.callback_urls),
            supported_identity_providers=["COGNITO"],
            explicit_auth_flows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            read_attributes=list(USER_READABLE_ATTRIBUTES),
            write_attributes=list(USER_WRITABLE_ATTRIBUTES),
            prevent_user_existence_errors="ENABLED",
            enable_token_revocation=True,
            access_token_validity=ACCESS_TOKEN_MINUTES,
            id_token_validity=ID_TOKEN_MINUTES,
            refresh_token_validity=REFRESH_TOKEN_HOURS,
            token_validity_units=TOKEN_VALIDITY_UNITS,
            auth_session_validity=3,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_federated_client(
        self, providers: list[aws.cognito.IdentityProvider]
    ) -> aws.cognito.UserPoolClient:
        a = self._args
        return federated_client(
            self._name,
            a.name_prefix,
            self.user_pool.id,
            a.federation,
            a.callback_urls,
            providers,
            self,
        )


def identity_providers(
    name: str,
    user_pool_id: pulumi.Input[str],
    federation: Sequence[FederationProvider],
    oidc_client_secrets: Mapping[str, pulumi.Input[str]],
    parent: pulumi.Resource,
) -> list[aws.cognito.IdentityProvider]:
    """One Cognito identity provider per federated provider, on ``user_pool_id``."""
    providers: list[aws.cognito.IdentityProvider] = []
    for provider in federation:
        details: dict[str, pulumi.Input[str]]
        if provider.protocol == "SAML":
            assert provider.metadata_url is not None
            details = {"MetadataURL": provider.metadata_url, "IDPSignout": "true"}
        else:
            assert provider.issuer is not None and provider.client_id is not None
            details = {
                "client_id": provider.client_id,
                "client_secret": oidc_client_secrets[provider.name],
                "oidc_issuer": provider.issuer,
                "authorize_scopes": "openid email profile",
                "attributes_request_method": "GET",
            }
        providers.append(
            aws.cognito.IdentityProvider(
                # Named by institution where it serves one: existing providers keep their
                # logical names (a rename would replace them).
                f"{name}-idp-{provider.institution_id or provider.name.lower()}",
                user_pool_id=user_pool_id,
                provider_name=provider.name,
                provider_type=provider.protocol,
                provider_details=details,
                attribute_mapping=provider_attribute_mapping(provider),
                opts=pulumi.ResourceOptions(parent=parent),
            )
        )
    return providers


def federated_client(
    name: str,
    name_prefix: str,
    user_pool_id: pulumi.Input[str],
    federation: Sequence[FederationProvider],
    callback_urls: Sequence[str],
    providers: list[aws.cognito.IdentityProvider],
    parent: pulumi.Resource,
) -> aws.cognito.UserPoolClient:
    """The client federated users sign in through: identity providers only, hosted UI
    (authorization code + PKCE), no password flow and no self-service scope, so its
    tokens cannot call UpdateUserAttributes. Cognito requires it to write every
    attribute the providers map."""
    mapped = sorted({k for p in federation for k in provider_attribute_mapping(p)})
    return aws.cognito.UserPoolClient(
        f"{name}-federated-client",
        name=f"{name_prefix}-federated",
        user_pool_id=user_pool_id,
        generate_secret=False,
        allowed_oauth_flows_user_pool_client=True,
        allowed_oauth_flows=["code"],
        allowed_oauth_scopes=FEDERATED_SCOPES,
        callback_urls=list(callback_urls),
        supported_identity_providers=[p.provider_name for p in providers],
        explicit_auth_flows=["ALLOW_REFRESH_TOKEN_AUTH"],
        read_attributes=sorted({*USER_READABLE_ATTRIBUTES, *mapped}),
        write_attributes=mapped,
        prevent_user_existence_errors="ENABLED",
        enable_token_revocation=True,
        access_token_validity=ACCESS_TOKEN_MINUTES,
        id_token_validity=ID_TOKEN_MINUTES,
        refresh_token_validity=REFRESH_TOKEN_HOURS,
        token_validity_units=TOKEN_VALIDITY_UNITS,
        auth_session_validity=3,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(providers)),
    )


@dataclass(frozen=True)
class FederationArgs:
    name_prefix: str
    user_pool_id: pulumi.Input[str]
    callback_urls: Sequence[str]
    federation: Sequence[FederationProvider]
    oidc_client_secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class Federation(pulumi.ComponentResource):
    """A layer's identity providers and their app client, on the core's user pool.

    Phase 2's layer declares them: the core pool never lists them, and destroying the
    layer removes the providers and the client (federated sign-in ends with the layer).
    """

    client: aws.cognito.UserPoolClient

    def __init__(self, name: str, args: FederationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hub:identity:Federation", name, None, opts)
        providers = identity_providers(
            name, args.user_pool_id, args.federation, args.oidc_client_secrets, self
        )
        self.client = federated_client(
            name,
            args.name_prefix,
            args.user_pool_id,
            args.federation,
            args.callback_urls,
            providers,
            self,
        )
        self.register_outputs({"client_id": self.client.id})
