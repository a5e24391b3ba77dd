"""Nothing a user can write about themselves decides what the service believes.

The attack from issue 11: a signed-in doctor calls Cognito's ``UpdateUserAttributes``
with their own access token and rewrites a granting attribute (institution, number,
specialty, and what an identity provider would assert). The deployed native client
refuses such writes (its write attributes are contact details only: the policy pack and
verify check it); moto does not enforce client attribute permissions (a recorded gap),
so here the write succeeds, which is what makes this test worth having: it shows the
service would not be fooled even if the write got through.
"""

from __future__ import annotations

from typing import Any

import pytest
from hub_testkit import INST_A, INST_B, Hub

GRANTING_WRITES = [
    ("custom:institution_id", INST_B),
    ("custom:specialty", "neurology"),
    ("custom:mchk_reg_no", "M30005"),  # another doctor's number (a neurologist at INST_B)
    ("custom:idp_reg_no", "M30005"),
    ("custom:hospital_code", "VGH"),
    ("custom:idp_groups", "[HA-Clinician, HA-Specialist]"),
]


def believed(hub: Hub, token: str) -> dict[str, Any]:
    """What the service believes about the token's holder, as /me reports it and as a
    group it creates records it."""
    me = hub.client.get("/me", headers=hub.bearer(token))
    assert me.status_code == 200, me.text
    created = hub.client.post(
        "/groups",
        headers=hub.bearer(token),
        json={"patient_id": "pt-synthetic-000321", "title": "Attribute attack"},
    )
    assert created.status_code == 201, created.text
    body = me.json()
    return {
        "me": {k: body[k] for k in ("reg_no", "institution", "roles", "specialties")},
        "group_institution": created.json()["institution"],
    }


@pytest.mark.parametrize(("attribute", "value"), GRANTING_WRITES)
def test_rewriting_a_granting_attribute_changes_nothing_the_service_believes(
    hub: Hub, attribute: str, value: str
) -> None:
    username = f"dr-attacker-{attribute.split(':')[1].replace('_', '-')}"
    reg_no, _ = hub.spare_number()
    token = hub.new_account(username)
    hub.enrol(username, INST_A, ("doctor",), reg_no)
    before = believed(hub, token)
    assert before["me"]["institution"] == INST_A and before["me"]["reg_no"] == reg_no

    # The attack: the user's own access token, the user's own attributes.
    hub.cognito.update_user_attributes(
        AccessToken=token, UserAttributes=[{"Name": attribute, "Value": value}]
    )
    user = hub.cognito.admin_get_user(UserPoolId=hub.pool_id, Username=username)
    assert {a["Name"]: a["Value"] for a in user["UserAttributes"]}[attribute] == value, (
        "moto took the write (its gap): the service must not believe it"
    )
    hub.monotonic.value += hub.settings.registration_cache_seconds  # no cache hides it
    assert believed(hub, token) == before


def test_rewriting_all_of_them_at_once_changes_nothing_either(hub: Hub) -> None:
    reg_no, _ = hub.spare_number()
    token = hub.new_account("dr-attacker-all")
    hub.enrol("dr-attacker-all", INST_A, ("doctor",), reg_no)
    before = believed(hub, token)
    hub.cognito.update_user_attributes(
        AccessToken=token, UserAttributes=[{"Name": n, "Value": v} for n, v in GRANTING_WRITES]
    )
    hub.monotonic.value += hub.settings.registration_cache_seconds
    assert believed(hub, token) == before
    assert hub.services.authenticator.authenticate(token).specialties == ()
