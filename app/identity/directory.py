"""The hub's directory of enrolled doctors: who can be invited, and who can be summoned.

The Medical Council register says who is registered and who is a specialist; it does
not say who uses the hub or where they work. The directory links the two, in the
groups table:

- ``pk = "DOCTOR#<reg no>"``, ``sk = "PROFILE"``: username and institution;
- ``pk = "SPECIALTY#<specialty>"``, ``sk = "DOCTOR#<reg no>"``: one item per specialty.

A doctor is enrolled when provisioned (:func:`enrol_user_pool` reads the pool's users and
resolves each through the affiliation data; demo seeding and tests use it) and
re-enrolled when they authenticate (at most once per cache window), which keeps the
institution current. The directory is a candidate list only: invitations and summons
re-check every candidate against the register (active; still a specialist in that
specialty) and the affiliation data (institution admitted, affiliation not removed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Key

from app.identity.affiliations import AffiliationLookup, EnrolmentRefused, SignIn, resolve_enrolment
from app.identity.federation import ASSERTED_ATTRIBUTES
from app.identity.principal import federated_provider


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
    cognito: Any,
    user_pool_id: str,
    directory: DoctorDirectory,
    register: Any,
    affiliations: AffiliationLookup,
) -> int:
    """Enrol every pool user the affiliation data places as a registered practitioner at
    an admitted institution; returns how many. Pool attributes a user can write are
    never read: the institution and number come from :func:`resolve_enrolment`."""
    count = 0
    for page in cognito.get_paginator("list_users").paginate(UserPoolId=user_pool_id):
        for user in page["Users"]:
            if not user.get("Enabled", True):
                continue
            attrs = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
            provider = federated_provider(attrs, user.get("UserStatus"))
            asserted = (
                {k: attrs[n] for n, k in ASSERTED_ATTRIBUTES.items() if n in attrs}
                if provider
                else {}
            )
            sign_in = SignIn(attrs.get("sub", ""), user["Username"], provider, asserted)
            try:
                enrolment = resolve_enrolment(sign_in, affiliations)
            except EnrolmentRefused:
                continue
            if enrolment.reg_no is None:
                continue
            entry = register.entry(enrolment.reg_no)
            if entry is None:
                continue
            directory.enrol(
                enrolment.reg_no, user["Username"], enrolment.institution.id, entry.specialties
            )
            count += 1
    return count
