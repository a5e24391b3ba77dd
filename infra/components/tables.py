"""DynamoDB tables of the sharing service.

Guarantees: on-demand billing, encryption with a customer-managed key (records key for
clinical metadata, audit key for the ledger), point-in-time recovery, deletion
protection, and ``protect=True`` so neither Pulumi nor a console click drops one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class TableSpec:
    """One table: its role in the service and its key schema."""

    hash_key: str
    range_key: str | None
    audit: bool = False  # encrypted with the audit key instead of the records key


# Logical table name -> spec. The service reads each physical name from HUB_TABLE_<NAME>.
TABLE_SPECS: dict[str, TableSpec] = {
    # Medical Council register mirror: registration number -> practitioner, status
    "register": TableSpec("reg_no", None),
    # consultation groups, memberships (with history) and the notification outbox
    "groups": TableSpec("pk", "sk"),
    # record manifests and versions
    "records": TableSpec("pk", "sk"),
    # audit ledger entries and tree nodes
    "ledger": TableSpec("pk", "sk", audit=True),
    # every phase's institutions, affiliations, account enrolments, identity-provider
    # mappings and pending self-registrations (key design: app/identity/affiliations.py)
    "institutions": TableSpec("pk", "sk"),
    # the patient index: its event log and uniqueness items, keyed references only
    "patients": TableSpec("pk", "sk"),
}


@dataclass(frozen=True)
class ServiceTablesArgs:
    name_prefix: str
    records_key_arn: pulumi.Input[str]
    audit_key_arn: pulumi.Input[str]


class ServiceTables(pulumi.ComponentResource):
    tables: dict[str, aws.dynamodb.Table]

    def __init__(
        self, name: str, args: ServiceTablesArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("hub:tables:ServiceTables", name, None, opts)
        self.tables = {}
        for logical, spec in TABLE_SPECS.items():
            attributes: list[aws.dynamodb.TableAttributeArgsDict] = [
                {"name": spec.hash_key, "type": "S"},
            ]
            if spec.range_key:
                attributes.append({"name": spec.range_key, "type": "S"})
            encryption: aws.dynamodb.TableServerSideEncryptionArgsDict = {
                "enabled": True,
                "kms_key_arn": args.audit_key_arn if spec.audit else args.records_key_arn,
            }
            self.tables[logical] = aws.dynamodb.Table(
                f"{name}-{logical}",
                name=f"{args.name_prefix}-{logical}",
                billing_mode="PAY_PER_REQUEST",
                hash_key=spec.hash_key,
                range_key=spec.range_key,
                attributes=attributes,
                server_side_encryption=encryption,
                point_in_time_recovery={"enabled": True},
                deletion_protection_enabled=True,
                tags={"hub:concern": "tables", "hub:table": logical},
                opts=pulumi.ResourceOptions(parent=self, protect=True),
            )
        self.register_outputs(
            {
                "table_names": {k: t.name for k, t in self.tables.items()},
                "table_arns": {k: t.arn for k, t in self.tables.items()},
            }
        )
