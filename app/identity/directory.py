"""The hub's directory of enrolled doctors: who can be invited, and who can be summoned.

The Medical Council register says who is registered and who is a specialist; it does
not say who uses the hub or where they work. The directory links the two, in the
groups table:

- ``pk = "DOCTOR#<reg no>"``, ``sk = "PROFILE"``: username and institution;
- ``pk = "SPECIALTY#<specialty>"``, ``sk = "DOCTOR#<reg no>"``: one item per specialty.

A doctor is enrolled when provisioned (:func:`enrol_user_pool` reads the pool's users;
demo seeding and tests use it) and re-enrolled when they authenticate (at most once
per cache window), which keeps the institution current. The directory is a candidate
list only: invitations and summons re-check every candidate against the register
(active; still a specialist in that specialty) and the admitted institutions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Key


@dataclass(frozen=True)
class DirectoryEntry:
    reg_no: str
    username: str
    institution: str
    specialty: str | None = None


class DoctorDirectory:
    def __init__(self, groups_table: Any):
        self._table = groups_table

    def enrol(
        self, reg_no: str, username: str, institution: str, specialties: Iterable[str] = ()
    ) -> None:
        base = {"reg_no": reg_no, "username": username, "institution": institution}
        # Single puts, not BatchWriteItem: the service role is granted item-level actions.
        self._table.put_item(Item={"pk": f"DOCTOR#{reg_no}", "sk": "PROFILE", **base})
        for specialty in specialties:
            self._table.put_item(
                Item={
                    "pk": f"SPECIALTY#{specialty}",
                    "sk": f"DOCTOR#{reg_no}",
                    "specialty": specialty,
                    **base,
                }
            )

    def doctor(self, reg_no: str) -> DirectoryEntry | None:
        item = self._table.get_item(
            Key={"pk": f"DOCTOR#{reg_no}", "sk": "PROFILE"}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        return DirectoryEntry(str(item["reg_no"]), str(item["username"]), str(item["institution"]))

    def specialists(self, specialty: str) -> list[DirectoryEntry]:
        out: list[DirectoryEntry] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(f"SPECIALTY#{specialty}"),
            "ConsistentRead": True,
        }
        while True:
            page = self._table.query(**kwargs)
            out.extend(
                DirectoryEntry(
                    str(i["reg_no"]), str(i["username"]), str(i["institution"]), specialty
                )
                for i in page["Items"]
            )
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def enrol_user_pool(
    cognito: Any, user_pool_id: str, directory: DoctorDirectory, register: Any
) -> int:
    """Enrol every pool user with a registration number and institution; returns how many."""
    count = 0
    for page in cognito.get_paginator("list_users").paginate(UserPoolId=user_pool_id):
        for user in page["Users"]:
            attrs = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
            reg_no = attrs.get("custom:mchk_reg_no", "").strip().upper()
            institution = attrs.get("custom:institution_id", "")
            if not reg_no or not institution:
                continue
            entry = register.entry(reg_no)
            if entry is None:
                continue
            directory.enrol(reg_no, user["Username"], institution, entry.specialties)
            count += 1
    return count
