"""KMS keys and aliases; IAM roles and their inline policies."""

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
    error_code,
    existing,
    ignore_missing,
    provisioner,
    tag_list,
)
from infra.emulator.record import ResourceRecord

# The shortest deletion window KMS allows; a forced destroy should not keep keys around.
MIN_KEY_DELETION_WINDOW_DAYS = 7


@provisioner
class Key(Provisioner):
    """Keys have no physical name: the previous record's key id finds them again."""

    type_token = "aws:kms/key:Key"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        kms = ctx.client("kms")
        i = declared.inputs
        spec = i.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT")
        usage = i.get("keyUsage", "ENCRYPT_DECRYPT")
        key_id = self._existing(ctx, declared, spec, usage)
        if key_id is None:
            kwargs: dict[str, Any] = {
                "KeySpec": spec,
                "KeyUsage": usage,
                "Description": i.get("description", ""),
            }
            if i.get("policy"):
                kwargs["Policy"] = i["policy"]
            if i.get("tags"):
                kwargs["Tags"] = tag_list(i["tags"], "TagKey", "TagValue")
            metadata = kms.create_key(**kwargs)["KeyMetadata"]
            key_id = metadata["KeyId"]
        else:
            if i.get("policy"):
                kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=i["policy"])
            kms.update_key_description(KeyId=key_id, Description=i.get("description", ""))
            if i.get("tags"):
                kms.tag_resource(KeyId=key_id, Tags=tag_list(i["tags"], "TagKey", "TagValue"))
        if i.get("enableKeyRotation"):
            rotation: dict[str, Any] = {"KeyId": key_id}
            if i.get("rotationPeriodInDays"):
                rotation["RotationPeriodInDays"] = as_int(i["rotationPeriodInDays"])
            kms.enable_key_rotation(**rotation)
        elif spec == "SYMMETRIC_DEFAULT":
            kms.disable_key_rotation(KeyId=key_id)
        if i.get("policy"):
            ctx.add_gap(gaps.key_policy(declared.name, ctx.emulator_name("kms")))
        arn = ctx.arn("kms", f"key/{key_id}")
        return Provisioned(id=key_id, state={"keyId": key_id, "arn": arn})

    def _existing(self, ctx: Context, declared: Declared, spec: str, usage: str) -> str | None:
        previous = declared.previous
        if previous is None or not previous.id:
            return None
        metadata = existing(
            lambda: ctx.client("kms").describe_key(KeyId=previous.id)["KeyMetadata"],
            "NotFoundException",
        )
        if metadata is None or metadata.get("KeyState") != "Enabled":
            return None
        if metadata.get("KeySpec") != spec or metadata.get("KeyUsage") != usage:
            # Spec and usage are immutable: replace (the old key is scheduled for deletion).
            self.delete(ctx, previous)
            return None
        return str(metadata["KeyId"])

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        kms = ctx.client("kms")
        state = existing(
            lambda: kms.describe_key(KeyId=record.id)["KeyMetadata"]["KeyState"],
            "NotFoundException",
        )
        if state in (None, "PendingDeletion", "PendingReplicaDeletion"):
            return
        window = as_int(record.inputs.get("deletionWindowInDays") or 30)
        kms.schedule_key_deletion(
            KeyId=record.id, PendingWindowInDays=max(window, MIN_KEY_DELETION_WINDOW_DAYS)
        )


@provisioner
class Alias(Provisioner):
    type_token = "aws:kms/alias:Alias"

    def attached_to(self, record: ResourceRecord) -> str | None:
        return str(record.inputs.get("targetKeyId") or "") or None

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        kms = ctx.client("kms")
        name = str(declared.inputs["name"])
        target = str(declared.inputs["targetKeyId"])
        try:
            kms.create_alias(AliasName=name, TargetKeyId=target)
        except ClientError as error:
            if error_code(error) != "AlreadyExistsException":
                raise
            kms.update_alias(AliasName=name, TargetKeyId=target)
        return Provisioned(
            id=name,
            state={"arn": ctx.arn("kms", name), "targetKeyArn": ctx.arn("kms", f"key/{target}")},
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        kms = ctx.client("kms")
        ignore_missing(lambda: kms.delete_alias(AliasName=record.id))


@provisioner
class Role(Provisioner):
    type_token = "aws:iam/role:Role"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        iam = ctx.client("iam")
        i = declared.inputs
        name = str(i.get("name") or declared.name)
        role = existing(lambda: iam.get_role(RoleName=name)["Role"], "NoSuchEntity")
        if role is not None:
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=i["assumeRolePolicy"])
        else:
            kwargs: dict[str, Any] = {
                "RoleName": name,
                "AssumeRolePolicyDocument": i["assumeRolePolicy"],
            }
            if i.get("description"):
                kwargs["Description"] = i["description"]
            if i.get("tags"):
                kwargs["Tags"] = tag_list(i["tags"])
            role = iam.create_role(**kwargs)["Role"]
        return Provisioned(
            id=name, state={"arn": role["Arn"], "name": name, "uniqueId": role["RoleId"]}
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        iam = ctx.client("iam")
        names = existing(
            lambda: iam.list_role_policies(RoleName=record.id)["PolicyNames"], "NoSuchEntity"
        )
        if names is None:
            return
        for policy_name in names:
            iam.delete_role_policy(RoleName=record.id, PolicyName=policy_name)
        # Managed policies still attached (a destroy in any order) would block the delete.
        for attached in iam.list_attached_role_policies(RoleName=record.id)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=record.id, PolicyArn=attached["PolicyArn"])
        ignore_missing(lambda: iam.delete_role(RoleName=record.id))


@provisioner
class RolePolicy(Provisioner):
    type_token = "aws:iam/rolePolicy:RolePolicy"

    def attached_to(self, record: ResourceRecord) -> str | None:
        return str(record.inputs.get("role") or "") or None

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        role = str(declared.inputs["role"])
        # Pulumi auto-names an unnamed inline policy from its logical name.
        name = str(declared.inputs.get("name") or declared.name)
        ctx.client("iam").put_role_policy(
            RoleName=role, PolicyName=name, PolicyDocument=declared.inputs["policy"]
        )
        return Provisioned(
            id=f"{role}:{name}", state={"name": name}, locator={"role": role, "policy_name": name}
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        iam = ctx.client("iam")
        ignore_missing(
            lambda: iam.delete_role_policy(
                RoleName=record.locator["role"], PolicyName=record.locator["policy_name"]
            )
        )


@provisioner
class RolePolicyAttachment(Provisioner):
    """A managed policy attached to a role (AWS Backup's service-role policies)."""

    type_token = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"

    def attached_to(self, record: ResourceRecord) -> str | None:
        return str(record.inputs.get("role") or "") or None

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        role = str(declared.inputs["role"])
        arn = str(declared.inputs["policyArn"])
        try:
            ctx.client("iam").attach_role_policy(RoleName=role, PolicyArn=arn)
        except ClientError as error:
            # moto loads AWS-managed policies only when asked to at start-up: the
            # attachment is then kept in the record, with its gap.
            if error_code(error) != "NoSuchEntity":
                raise
            ctx.add_gap(gaps.managed_policy_unknown(declared.name, arn, ctx.emulator_name("iam")))
        return Provisioned(id=f"{role}/{arn}", locator={"role": role, "policy_arn": arn})

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        iam = ctx.client("iam")
        ignore_missing(
            lambda: iam.detach_role_policy(
                RoleName=record.locator["role"], PolicyArn=record.locator["policy_arn"]
            )
        )
