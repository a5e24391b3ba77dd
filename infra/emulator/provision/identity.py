"""Cognito: the user pool, its groups, federated identity providers, client and domain."""

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
    error_code,
    existing,
    ignore_missing,
    provisioner,
)
from infra.emulator.record import ResourceRecord


def _pool_settings(i: dict[str, Any]) -> dict[str, Any]:
    """The CreateUserPool/UpdateUserPool arguments shared by both calls."""
    pw = i.get("passwordPolicy") or {}
    password_policy = drop_none(
        {
            "MinimumLength": as_int(pw["minimumLength"]) if "minimumLength" in pw else None,
            "RequireUppercase": pw.get("requireUppercase"),
            "RequireLowercase": pw.get("requireLowercase"),
            "RequireNumbers": pw.get("requireNumbers"),
            "RequireSymbols": pw.get("requireSymbols"),
            "PasswordHistorySize": as_int(pw["passwordHistorySize"])
            if "passwordHistorySize" in pw
            else None,
            "TemporaryPasswordValidityDays": as_int(pw["temporaryPasswordValidityDays"])
            if "temporaryPasswordValidityDays" in pw
            else None,
        }
    )
    lc = i.get("lambdaConfig") or {}
    lambda_config: dict[str, Any] = {}
    if lc.get("preSignUp"):
        lambda_config["PreSignUp"] = lc["preSignUp"]
    ptg = lc.get("preTokenGenerationConfig")
    if ptg:
        lambda_config["PreTokenGenerationConfig"] = {
            "LambdaArn": ptg["lambdaArn"],
            "LambdaVersion": ptg["lambdaVersion"],
        }
    recovery = (i.get("accountRecoverySetting") or {}).get("recoveryMechanisms") or []
    settings = drop_none(
        {
            "Policies": {"PasswordPolicy": password_policy} if password_policy else None,
            "DeletionProtection": i.get("deletionProtection"),
            "LambdaConfig": lambda_config or None,
            "AutoVerifiedAttributes": i.get("autoVerifiedAttributes"),
            "MfaConfiguration": "OFF",  # set with SetUserPoolMfaConfig once TOTP is enabled
            "UserPoolAddOns": {"AdvancedSecurityMode": i["userPoolAddOns"]["advancedSecurityMode"]}
            if i.get("userPoolAddOns")
            else None,
            "AdminCreateUserConfig": {
                "AllowAdminCreateUserOnly": bool(
                    i["adminCreateUserConfig"].get("allowAdminCreateUserOnly", False)
                )
            }
            if i.get("adminCreateUserConfig")
            else None,
            "AccountRecoverySetting": {
                "RecoveryMechanisms": [
                    {"Name": m["name"], "Priority": as_int(m["priority"])} for m in recovery
                ]
            }
            if recovery
            else None,
            "UserPoolTier": i.get("userPoolTier"),
            "UserPoolTags": i.get("tags"),
        }
    )
    return settings


def _schema(i: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for attr in i.get("schemas") or []:
        item: dict[str, Any] = {
            "Name": attr["name"],
            "AttributeDataType": attr["attributeDataType"],
            "Mutable": bool(attr.get("mutable", True)),
            "DeveloperOnlyAttribute": bool(attr.get("developerOnlyAttribute", False)),
        }
        constraints = attr.get("stringAttributeConstraints")
        if constraints:
            item["StringAttributeConstraints"] = drop_none(
                {
                    "MinLength": constraints.get("minLength"),
                    "MaxLength": constraints.get("maxLength"),
                }
            )
        out.append(item)
    return out


def find_user_pool(cognito: Any, name: str) -> str | None:
    for page in cognito.get_paginator("list_user_pools").paginate(MaxResults=60):
        for pool in page.get("UserPools", []):
            if pool["Name"] == name:
                return str(pool["Id"])
    return None


@provisioner
class UserPool(Provisioner):
    type_token = "aws:cognito/userPool:UserPool"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        cognito = ctx.client("cognito-idp")
        i = declared.inputs
        name = str(i.get("name") or declared.name)
        settings = _pool_settings(i)
        pool_id = find_user_pool(cognito, name)
        if pool_id is None:
            pool = cognito.create_user_pool(PoolName=name, Schema=_schema(i), **settings)
            pool_id = pool["UserPool"]["Id"]
        else:
            cognito.update_user_pool(UserPoolId=pool_id, **settings)
            self._add_missing_attributes(cognito, pool_id, i)
        mfa = i.get("mfaConfiguration", "OFF")
        totp = bool((i.get("softwareTokenMfaConfiguration") or {}).get("enabled"))
        if mfa != "OFF" or totp:
            cognito.set_user_pool_mfa_config(
                UserPoolId=pool_id,
                MfaConfiguration=mfa,
                SoftwareTokenMfaConfiguration={"Enabled": totp},
            )
        if i.get("lambdaConfig"):
            ctx.add_gap(gaps.cognito_triggers(declared.name))
        if i.get("userPoolAddOns") or i.get("userPoolTier"):
            ctx.add_gap(gaps.cognito_threat_protection(declared.name))
        arn = ctx.arn("cognito-idp", f"userpool/{pool_id}")
        return Provisioned(
            id=pool_id,
            state={
                "arn": arn,
                "name": name,
                "endpoint": f"cognito-idp.{ctx.region}.amazonaws.com/{pool_id}",
            },
        )

    def _add_missing_attributes(self, cognito: Any, pool_id: str, i: dict[str, Any]) -> None:
        existing = {
            a["Name"]
            for a in cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"].get(
                "SchemaAttributes", []
            )
        }
        missing = [
            a
            for a in _schema(i)
            if f"custom:{a['Name']}" not in existing and a["Name"] not in existing
        ]
        if missing:
            cognito.add_custom_attributes(UserPoolId=pool_id, CustomAttributes=missing)

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        cognito = ctx.client("cognito-idp")
        try:
            cognito.update_user_pool(UserPoolId=record.id, DeletionProtection="INACTIVE")
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                return
            raise
        ignore_missing(lambda: cognito.delete_user_pool(UserPoolId=record.id))


class _InPool(Provisioner):
    def attached_to(self, record: ResourceRecord) -> str | None:
        return str(record.inputs.get("userPoolId") or "") or None


@provisioner
class UserGroup(_InPool):
    type_token = "aws:cognito/userGroup:UserGroup"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        cognito = ctx.client("cognito-idp")
        i = declared.inputs
        pool, name = str(i["userPoolId"]), str(i.get("name") or declared.name)
        fields = drop_none(
            {
                "Description": i.get("description"),
                "Precedence": as_int(i["precedence"]) if i.get("precedence") is not None else None,
                "RoleArn": i.get("roleArn"),
            }
        )
        try:
            cognito.create_group(GroupName=name, UserPoolId=pool, **fields)
        except ClientError as error:
            if error_code(error) != "GroupExistsException":
                raise
            cognito.update_group(GroupName=name, UserPoolId=pool, **fields)
        return Provisioned(
            id=f"{pool}/{name}", state={"name": name}, locator={"pool": pool, "group": name}
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        cognito = ctx.client("cognito-idp")
        ignore_missing(
            lambda: cognito.delete_group(
                GroupName=record.locator["group"], UserPoolId=record.locator["pool"]
            )
        )


@provisioner
class IdentityProvider(_InPool):
    type_token = "aws:cognito/identityProvider:IdentityProvider"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        cognito = ctx.client("cognito-idp")
        i = declared.inputs
        pool, name = str(i["userPoolId"]), str(i["providerName"])
        details = {k: str(v) for k, v in (i.get("providerDetails") or {}).items()}
        mapping = dict(i.get("attributeMapping") or {})
        found = existing(
            lambda: cognito.describe_identity_provider(UserPoolId=pool, ProviderName=name),
            "ResourceNotFoundException",
        )
        if found is None:
            cognito.create_identity_provider(
                UserPoolId=pool,
                ProviderName=name,
                ProviderType=i["providerType"],
                ProviderDetails=details,
                AttributeMapping=mapping,
                IdpIdentifiers=list(i.get("idpIdentifiers") or []),
            )
        else:
            cognito.update_identity_provider(
                UserPoolId=pool,
                ProviderName=name,
                ProviderDetails=details,
                AttributeMapping=mapping,
            )
        ctx.add_gap(gaps.federation(declared.name))
        return Provisioned(id=f"{pool}:{name}", locator={"pool": pool, "provider": name})

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        cognito = ctx.client("cognito-idp")
        ignore_missing(
            lambda: cognito.delete_identity_provider(
                UserPoolId=record.locator["pool"], ProviderName=record.locator["provider"]
            )
        )


@provisioner
class UserPoolClient(_InPool):
    type_token = "aws:cognito/userPoolClient:UserPoolClient"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        cognito = ctx.client("cognito-idp")
        i = declared.inputs
        pool, name = str(i["userPoolId"]), str(i.get("name") or declared.name)
        units = i.get("tokenValidityUnits") or {}
        fields = drop_none(
            {
                "AllowedOAuthFlowsUserPoolClient": i.get("allowedOauthFlowsUserPoolClient"),
                "AllowedOAuthFlows": i.get("allowedOauthFlows"),
                "AllowedOAuthScopes": i.get("allowedOauthScopes"),
                "CallbackURLs": i.get("callbackUrls"),
                "LogoutURLs": i.get("logoutUrls"),
                "SupportedIdentityProviders": i.get("supportedIdentityProviders"),
                "ExplicitAuthFlows": i.get("explicitAuthFlows"),
                "PreventUserExistenceErrors": i.get("preventUserExistenceErrors"),
                "EnableTokenRevocation": i.get("enableTokenRevocation"),
                "AccessTokenValidity": as_int(i["accessTokenValidity"])
                if "accessTokenValidity" in i
                else None,
                "IdTokenValidity": as_int(i["idTokenValidity"]) if "idTokenValidity" in i else None,
                "RefreshTokenValidity": as_int(i["refreshTokenValidity"])
                if "refreshTokenValidity" in i
                else None,
                "TokenValidityUnits": drop_none(
                    {
                        "AccessToken": units.get("accessToken"),
                        "IdToken": units.get("idToken"),
                        "RefreshToken": units.get("refreshToken"),
                    }
                )
                if units
                else None,
                "AuthSessionValidity": as_int(i["authSessionValidity"])
                if "authSessionValidity" in i
                else None,
                "ReadAttributes": i.get("readAttributes"),
                "WriteAttributes": i.get("writeAttributes"),
            }
        )
        client_id = None
        for page in cognito.get_paginator("list_user_pool_clients").paginate(
            UserPoolId=pool, MaxResults=60
        ):
            for client in page.get("UserPoolClients", []):
                if client["ClientName"] == name:
                    client_id = client["ClientId"]
        if client_id is None:
            client_id = cognito.create_user_pool_client(
                UserPoolId=pool,
                ClientName=name,
                GenerateSecret=bool(i.get("generateSecret", False)),
                **fields,
            )["UserPoolClient"]["ClientId"]
        else:
            cognito.update_user_pool_client(
                UserPoolId=pool, ClientId=client_id, ClientName=name, **fields
            )
        ctx.add_gap(gaps.cognito_client_flows(declared.name))
        ctx.add_gap(gaps.cognito_sign_in_challenges(declared.name))
        ctx.add_gap(gaps.cognito_token_lifetime(declared.name))
        if i.get("writeAttributes") is not None:
            ctx.add_gap(gaps.client_attribute_permissions(declared.name))
        return Provisioned(id=client_id, state={"name": name}, locator={"pool": pool})

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        cognito = ctx.client("cognito-idp")
        ignore_missing(
            lambda: cognito.delete_user_pool_client(
                UserPoolId=record.locator["pool"], ClientId=record.id
            )
        )


@provisioner
class ResourceServer(_InPool):
    type_token = "aws:cognito/resourceServer:ResourceServer"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        cognito = ctx.client("cognito-idp")
        i = declared.inputs
        pool, identifier = str(i["userPoolId"]), str(i["identifier"])
        name = str(i.get("name") or declared.name)
        scopes = [
            {"ScopeName": str(s["scopeName"]), "ScopeDescription": str(s["scopeDescription"])}
            for s in i.get("scopes") or []
        ]
        found = existing(
            lambda: cognito.describe_resource_server(UserPoolId=pool, Identifier=identifier),
            "ResourceNotFoundException",
        )
        if found is None:
            cognito.create_resource_server(
                UserPoolId=pool, Identifier=identifier, Name=name, Scopes=scopes
            )
        # An existing one stays as it is: moto has no UpdateResourceServer (the verify
        # check cognito.intake_channel judges the live scopes).
        ctx.add_gap(gaps.cognito_token_endpoint(declared.name))
        return Provisioned(
            id=f"{pool}|{identifier}",
            state={"identifier": identifier},
            locator={"pool": pool, "identifier": identifier},
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        # moto has no DeleteResourceServer; deleting the pool removes its servers.
        return None


@provisioner
class UserPoolDomain(_InPool):
    type_token = "aws:cognito/userPoolDomain:UserPoolDomain"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        cognito = ctx.client("cognito-idp")
        pool, domain = str(declared.inputs["userPoolId"]), str(declared.inputs["domain"])
        existing = cognito.describe_user_pool_domain(Domain=domain).get("DomainDescription", {})
        if existing.get("UserPoolId") and existing["UserPoolId"] != pool:
            # Replace: the domain points at another (older) pool.
            cognito.delete_user_pool_domain(Domain=domain, UserPoolId=existing["UserPoolId"])
            existing = {}
        if not existing.get("UserPoolId"):
            cognito.create_user_pool_domain(Domain=domain, UserPoolId=pool)
        return Provisioned(
            id=domain,
            state={
                "domain": domain,
                "cloudfrontDistribution": f"{domain}.auth.{ctx.region}.amazoncognito.com",
            },
            locator={"pool": pool},
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        cognito = ctx.client("cognito-idp")
        ignore_missing(
            lambda: cognito.delete_user_pool_domain(
                Domain=record.id, UserPoolId=record.locator["pool"]
            )
        )
