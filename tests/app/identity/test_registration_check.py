"""The per-request identity checks: registration (with bounded staleness), institution,
and roles derived from what the register confirms."""

from __future__ import annotations

import pytest
from hub_testkit import INST_A, Hub
from pydantic import ValidationError

from app.identity.registration import RegistrationStatus
from app.settings import Settings


def test_suspension_holds_within_the_cache_window(hub: Hub) -> None:
    who = hub.headers("dr-stale")
    assert hub.client.get("/me", headers=who).status_code == 200
    hub.services.register.set_status("M20014", RegistrationStatus.SUSPENDED)
    try:
        window = hub.settings.registration_cache_seconds
        assert 0 < window <= 300
        hub.monotonic.value += window  # the cached registration has just expired
        r = hub.client.get("/me", headers=who)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "registration_suspended"
    finally:
        hub.services.register.set_status("M20014", RegistrationStatus.ACTIVE)
        hub.monotonic.value += hub.settings.registration_cache_seconds
    assert hub.client.get("/me", headers=who).status_code == 200


def test_cache_longer_than_five_minutes_is_refused() -> None:
    with pytest.raises(ValidationError, match="REGISTRATION_CACHE_SECONDS must be <= 300"):
        Settings(mode="local", registration_cache_seconds=301)


def test_specialist_role_needs_the_specialist_register(hub: Hub) -> None:
    me = hub.client.get("/me", headers=hub.headers("sp-cardio-a")).json()
    assert me["roles"] == ["doctor", "specialist"] and me["specialties"] == ["cardiology"]
    # Affiliated as a specialist, but only on the general register: not a specialist here.
    reg_no, _ = hub.spare_number()
    token = hub.new_account("dr-self-styled")
    hub.enrol("dr-self-styled", INST_A, ("doctor", "specialist"), reg_no)
    me = hub.client.get("/me", headers=hub.bearer(token)).json()
    assert me["roles"] == ["doctor"] and me["specialties"] == []


def test_institution_not_admitted_in_this_phase(hub: Hub) -> None:
    r = hub.client.get("/me", headers=hub.headers("dr-not-admitted"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "institution_not_admitted"


def test_unknown_and_disabled_users(hub: Hub) -> None:
    hub.cognito.admin_disable_user(UserPoolId=hub.pool_id, Username="dr-target")
    hub.monotonic.value += hub.settings.registration_cache_seconds
    try:
        r = hub.client.get("/me", headers=hub.headers("dr-target"))
        assert r.status_code == 403 and r.json()["error"]["code"] == "user_unknown"
    finally:
        hub.cognito.admin_enable_user(UserPoolId=hub.pool_id, Username="dr-target")
        hub.monotonic.value += hub.settings.registration_cache_seconds
