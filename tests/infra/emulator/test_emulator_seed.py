"""The demo seeding of a deployed phase: synthetic users and register entries, idempotent."""

from __future__ import annotations

import json

import boto3

from app.identity.affiliations import DynamoAffiliations
from infra.emulator import DeploymentRecord
from infra.emulator.provision import Context
from infra.emulator.seed import seed_stack

PHASE1 = "phase1-specialist"


def test_seeding_creates_synthetic_users_and_register_entries(
    deployed_stacks: dict[str, DeploymentRecord], moto_endpoint: str
) -> None:
    record = deployed_stacks[PHASE1]
    institutions = ["harbour-cardiac-alliance", "lion-rock-oncology"]
    result = seed_stack(record, institutions, Context(moto_endpoint, "ap-east-1"))
    again = seed_stack(record, institutions, Context(moto_endpoint, "ap-east-1"))
    assert [u.username for u in again.users] == [u.username for u in result.users]

    cognito = boto3.session.Session().client(
        "cognito-idp", endpoint_url=moto_endpoint, region_name="ap-east-1"
    )
    pool = record.outputs["userPoolId"]
    specialists = [u for u in again.users if u.role == "specialist"]
    assert len({u.specialty for u in specialists}) >= 2
    user = cognito.admin_get_user(UserPoolId=pool, Username=specialists[0].username)
    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    # No granting attribute in the pool: the enrolment in the institutions table is it.
    assert not {a for a in attributes if a.startswith("custom:")}
    assert user["UserStatus"] == "CONFIRMED"
    affiliations = DynamoAffiliations(
        boto3.session.Session().client(
            "dynamodb", endpoint_url=moto_endpoint, region_name="ap-east-1"
        ),
        record.outputs["tableNames"]["institutions"],
    )
    account = affiliations.account(attributes["sub"])
    assert account is not None and account.member == specialists[0].mchk_reg_no
    assert account.institution in institutions and account.status.value == "active"
    institution, affiliation = affiliations.standing(account.institution, account.member)
    assert institution is not None and institution.admitted
    assert affiliation is not None and affiliation.roles == ("specialist",)
    groups = cognito.admin_list_groups_for_user(UserPoolId=pool, Username=specialists[0].username)[
        "Groups"
    ]
    assert [g["GroupName"] for g in groups] == ["specialist"]
    # Re-seeding made no second account (the pool is the hub's: layers seed into it too).
    listed = [u["Username"] for u in cognito.list_users(UserPoolId=pool)["Users"]]
    seeded = [u.username for u in again.users]
    assert sorted(n for n in listed if n in seeded) == sorted(seeded)

    ddb = boto3.session.Session().client(
        "dynamodb", endpoint_url=moto_endpoint, region_name="ap-east-1"
    )
    item = ddb.get_item(
        TableName=record.outputs["tableNames"]["register"],
        Key={"reg_no": {"S": specialists[0].mchk_reg_no}},
    )["Item"]
    assert item["status"]["S"] == "active" and "(synthetic)" in item["name_en"]["S"]
    assert json.dumps([u.to_json() for u in again.users])  # serialisable for local.json
    # The demo patients are in the phase's patient index, once each (groups need that).
    from app.patients.repository import DynamoPatientIndexRepository

    index = DynamoPatientIndexRepository(ddb, record.outputs["tableNames"]["patients"])
    assert all(index.is_registered(p["patient_id"]) for p in again.patients)
    # Once each: seeding twice registered nothing twice (other tests on this worker's
    # emulator may have registered patients of their own in the same index).
    seeded = {p["patient_id"] for p in again.patients}
    registered = [e.patient_id for e in index.events() if e.patient_id in seeded]
    assert sorted(registered) == sorted(seeded)
