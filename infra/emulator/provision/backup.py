"""AWS Backup: the vault, its lock and the plan on moto; the selection as a recorded gap.

moto holds vaults (with their encryption key), vault locks and plans, so those are
created for real and verify reads them back; it has no selections, backup jobs or
restores, so the selection is kept in the deployment record with a gap naming the
checks that cover it (the pack rule and the restore drill).
"""

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
)
from infra.emulator.record import ResourceRecord


@provisioner
class Vault(Provisioner):
    type_token = "aws:backup/vault:Vault"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        backup = ctx.client("backup")
        i = declared.inputs
        name = str(i.get("name") or declared.name)
        vault = existing(
            lambda: backup.describe_backup_vault(BackupVaultName=name), "ResourceNotFoundException"
        )
        if vault is None:
            kwargs: dict[str, Any] = {"BackupVaultName": name}
            if i.get("kmsKeyArn"):
                kwargs["EncryptionKeyArn"] = i["kmsKeyArn"]
            if i.get("tags"):
                kwargs["BackupVaultTags"] = {k: str(v) for k, v in i["tags"].items()}
            vault = backup.create_backup_vault(**kwargs)
        return Provisioned(id=name, state={"name": name, "arn": vault["BackupVaultArn"]})

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        backup = ctx.client("backup")
        ignore_missing(lambda: backup.delete_backup_vault(BackupVaultName=record.id))


@provisioner
class VaultLockConfiguration(Provisioner):
    type_token = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"

    def attached_to(self, record: ResourceRecord) -> str | None:
        return str(record.inputs.get("backupVaultName") or "") or None

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        i = declared.inputs
        name = str(i["backupVaultName"])
        kwargs: dict[str, Any] = {"BackupVaultName": name}
        for key, arg in (
            ("minRetentionDays", "MinRetentionDays"),
            ("maxRetentionDays", "MaxRetentionDays"),
            ("changeableForDays", "ChangeableForDays"),
        ):
            if i.get(key) is not None:
                kwargs[arg] = as_int(i[key])
        ctx.client("backup").put_backup_vault_lock_configuration(**kwargs)
        return Provisioned(id=name, state={"backupVaultName": name})

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        backup = ctx.client("backup")
        ignore_missing(
            lambda: backup.delete_backup_vault_lock_configuration(BackupVaultName=record.id)
        )


def _rule(rule: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "RuleName": rule["ruleName"],
        "TargetBackupVaultName": rule["targetVaultName"],
    }
    if rule.get("schedule"):
        out["ScheduleExpression"] = rule["schedule"]
    lifecycle = rule.get("lifecycle") or {}
    if lifecycle.get("deleteAfter") is not None:
        out["Lifecycle"] = {"DeleteAfterDays": as_int(lifecycle["deleteAfter"])}
    return out


@provisioner
class Plan(Provisioner):
    """Plans have no name-keyed lookup: the live plan of the declared name is reused."""

    type_token = gaps.BACKUP_PLAN

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        backup = ctx.client("backup")
        i = declared.inputs
        name = str(i.get("name") or declared.name)
        found = next(
            (
                p
                for p in backup.list_backup_plans()["BackupPlansList"]
                if p.get("BackupPlanName") == name
            ),
            None,
        )
        if found is None:
            kwargs: dict[str, Any] = {
                "BackupPlan": {
                    "BackupPlanName": name,
                    "Rules": [_rule(r) for r in i.get("rules") or []],
                }
            }
            if i.get("tags"):
                kwargs["BackupPlanTags"] = {k: str(v) for k, v in i["tags"].items()}
            try:
                found = backup.create_backup_plan(**kwargs)
            except ClientError as error:
                if error_code(error) != "AlreadyExistsException":
                    raise
                # moto keeps a deleted plan's name taken (AWS does not): a redeploy
                # after a destroy takes that plan's record again (the gap says so).
                found = next(
                    p
                    for p in backup.list_backup_plans(IncludeDeleted=True)["BackupPlansList"]
                    if p.get("BackupPlanName") == name
                )
        ctx.add_gap(gaps.backup_plan_never_runs(declared.name))
        return Provisioned(
            id=str(found["BackupPlanId"]),
            state={
                "name": name,
                "arn": found["BackupPlanArn"],
                "version": found.get("VersionId", ""),
            },
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        backup = ctx.client("backup")
        ignore_missing(lambda: backup.delete_backup_plan(BackupPlanId=record.id))


@provisioner
class Selection(Provisioner):
    """Not created: moto has no selections. The record keeps the declared resources."""

    type_token = gaps.BACKUP_SELECTION

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        i = declared.inputs
        ctx.add_gap(gaps.backup_selection(declared.name))
        return Provisioned(id=f"{i.get('planId', '')}:{i.get('name') or declared.name}")

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        """Nothing was created on the emulator."""
