"""The homeserver configuration, names and registration the project generates (pure, no Synapse)."""

from __future__ import annotations

import re
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.messaging.appservice import AppServiceRegistration, InvalidRegistration
from app.messaging.homeserver import (
    DeployedHomeserver,
    EmulatedMediaBucket,
    HomeserverSettings,
    InvalidHomeserverSettings,
    deployed_homeserver_config,
    homeserver_config,
    signing_key_file_text,
)
from app.messaging.identifiers import InvalidMatrixName, MatrixNames

NAMES = MatrixNames("hub.local")
SECRET = "s" * 40


def settings(tmp_path: Path, **overrides: Any) -> HomeserverSettings:
    base = HomeserverSettings(
        server_name="hub.local",
        bind_address="127.0.0.1",
        port=8448,
        public_baseurl="http://127.0.0.1:8448/",
        data_dir=tmp_path,
        appservice_files=(tmp_path / "appservice.yaml",),
        macaroon_secret_key=SECRET,
        form_secret=SECRET.upper(),
    )
    return replace(base, **overrides)


# Names ---------------------------------------------------------------------------------


def test_doctor_account_is_derived_from_the_registration_number() -> None:
    assert NAMES.doctor_user_id("ZZ1234") == "@doc-zz1234:hub.local"
    assert NAMES.reg_no_of("@doc-zz1234:hub.local") == "ZZ1234"
    assert NAMES.group_alias("0f" * 16) == f"#grp-{'0f' * 16}:hub.local"


@pytest.mark.parametrize("reg_no", ["", "zz1234", "ZZ12", "ZZZ1234", "ZZ1234567", "ZZ1234\n"])
def test_no_account_for_what_is_not_a_registration_number(reg_no: str) -> None:
    with pytest.raises(InvalidMatrixName):
        NAMES.doctor_user_id(reg_no)


@pytest.mark.parametrize(
    "user_id",
    [
        "@hub:hub.local",
        "@doc-zz1234:evil.example",
        "@doc-zz1234:hub.local.evil",
        "@doc-x:hub.local",
    ],
)
def test_only_hub_doctor_accounts_map_back_to_a_registration_number(user_id: str) -> None:
    assert NAMES.reg_no_of(user_id) is None


@pytest.mark.parametrize("server", ["Hub.local", "hub.local:8448", "-hub", "", "a" * 254])
def test_server_name_must_be_a_lower_case_dns_name(server: str) -> None:
    with pytest.raises(InvalidMatrixName):
        MatrixNames(server)


def test_namespaces_match_exactly_the_hub_forms() -> None:
    users, aliases = re.compile(NAMES.user_namespace()), re.compile(NAMES.alias_namespace())
    assert users.match("@doc-zz1234:hub.local")
    for other in ("@doc-zz1234:hub.localx", "@xdoc-zz1234:hub.local", "@doc-zz1234:hubxlocal"):
        assert not users.match(other)
    assert aliases.match("#grp-abc123:hub.local")
    assert not aliases.match("#grp-abc123:hub.local.evil")
    assert not aliases.match("#general:hub.local")


# Homeserver configuration ----------------------------------------------------------------


def test_federation_is_closed(tmp_path: Path) -> None:
    config = homeserver_config(settings(tmp_path))
    resources = [
        name for lst in config["listeners"] for r in lst["resources"] for name in r["names"]
    ]
    assert resources == ["client"]  # no federation, keys or openid for remote servers
    assert config["federation_domain_whitelist"] == []
    assert config["trusted_key_servers"] == []
    assert config["allow_public_rooms_over_federation"] is False


def test_listener_is_on_the_given_address_without_tls_termination(tmp_path: Path) -> None:
    (listener,) = homeserver_config(settings(tmp_path))["listeners"]
    assert listener["bind_addresses"] == ["127.0.0.1"]
    assert listener["x_forwarded"] is False


def test_accounts_only_through_the_application_service(tmp_path: Path) -> None:
    config = homeserver_config(settings(tmp_path))
    assert config["enable_registration"] is False
    assert config["allow_guest_access"] is False
    assert "registration_shared_secret" not in config
    assert "registration_shared_secret_path" not in config
    assert config["app_service_config_files"] == [str(tmp_path / "appservice.yaml")]


def test_no_public_directory_and_no_user_aliases(tmp_path: Path) -> None:
    config = homeserver_config(settings(tmp_path))
    assert config["room_list_publication_rules"] == [{"action": "deny"}]
    assert config["alias_creation_rules"] == [{"action": "deny"}]
    assert config["allow_public_rooms_without_auth"] is False
    assert config["user_directory"]["search_all_users"] is False


def test_only_the_hub_creates_rooms_and_invites(tmp_path: Path) -> None:
    config = settings(tmp_path)
    (module,) = homeserver_config(config)["modules"]
    assert module == {
        "module": "app.messaging.synapse_policy.HubRoomPolicy",
        # The registration names where uploads are reported, and with which token.
        "config": {
            "hub_user_id": "@hub:hub.local",
            "registration_file": str(config.appservice_files[0]),
        },
    }


def test_every_room_is_encrypted_by_default(tmp_path: Path) -> None:
    assert (
        homeserver_config(settings(tmp_path))["encryption_enabled_by_default_for_room_type"]
        == "all"
    )


def test_no_outbound_connections(tmp_path: Path) -> None:
    config = homeserver_config(settings(tmp_path))
    assert config["url_preview_enabled"] is False
    assert config["push"]["enabled"] is False
    assert config["report_stats"] is False
    assert config["enable_metrics"] is False
    assert config["trusted_key_servers"] == []


def test_media_retention_follows_the_setting(tmp_path: Path) -> None:
    config = homeserver_config(settings(tmp_path, media_retention_days=30))
    assert config["media_retention"]["local_media_lifetime"] == "30d"
    with pytest.raises(InvalidHomeserverSettings):
        settings(tmp_path, media_retention_days=0)


def test_media_stays_local_unless_an_emulated_bucket_is_named(tmp_path: Path) -> None:
    assert "media_storage_providers" not in homeserver_config(settings(tmp_path))
    bucket = EmulatedMediaBucket("media", "ap-east-1", "http://127.0.0.1:5000", "k", "s")
    (provider,) = homeserver_config(settings(tmp_path, media_bucket=bucket))[
        "media_storage_providers"
    ]
    deployed = DeployedHomeserver(
        server_name="hub.local",
        public_baseurl="https://chat.example/",
        database_host="db",
        database_name="synapse",
        database_user="synapse",
        media_bucket="media",
        region="ap-east-1",
    )
    (as_deployed,) = deployed_homeserver_config(deployed)["media_storage_providers"]
    # The deployed provider, plus only where the emulator is and its credentials.
    emulator = {"endpoint_url", "access_key_id", "secret_access_key"}
    assert {k: v for k, v in provider["config"].items() if k not in emulator} == as_deployed[
        "config"
    ]
    assert {**provider, "config": as_deployed["config"]} == as_deployed
    assert provider["config"]["endpoint_url"] == "http://127.0.0.1:5000"


@pytest.mark.parametrize("endpoint", ["https://s3.ap-east-1.amazonaws.com", "http://10.0.0.5:5000"])
def test_the_emulated_media_bucket_is_on_loopback_only(endpoint: str) -> None:
    with pytest.raises(InvalidHomeserverSettings, match="loopback"):
        EmulatedMediaBucket("media", "ap-east-1", endpoint, "k", "s")


def test_test_rate_limits_only_on_loopback(tmp_path: Path) -> None:
    loose = homeserver_config(settings(tmp_path, rate_limits="test"))
    standard = homeserver_config(settings(tmp_path))
    assert loose["rc_message"]["per_second"] >= 100
    assert "rc_message" not in standard  # Synapse's defaults
    assert standard["rc_login"]["failed_attempts"]["burst_count"] <= 3
    with pytest.raises(InvalidHomeserverSettings, match="loopback"):
        settings(tmp_path, bind_address="10.0.0.5", rate_limits="test")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("macaroon_secret_key", "short"),
        ("form_secret", ""),
        ("port", 0),
        ("bind_address", "localhost"),
        ("public_baseurl", "http://127.0.0.1:8448"),
        ("appservice_files", ()),
        ("server_name", "Hub.Local"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, field: str, value: Any) -> None:
    with pytest.raises(ValueError):
        settings(tmp_path, **{field: value})


def test_signing_key_file_format() -> None:
    line = signing_key_file_text(bytes(range(32)))
    algorithm, key_id, seed = line.split()
    assert (algorithm, key_id) == ("ed25519", "a_hub")
    assert "=" not in seed and len(seed) == 43  # unpadded base64 of 32 bytes
    with pytest.raises(InvalidHomeserverSettings):
        signing_key_file_text(b"short")


# Application service registration -----------------------------------------------------------


def test_registration_reserves_the_namespaces_exclusively(tmp_path: Path) -> None:
    registration = AppServiceRegistration.generate(NAMES, "http://127.0.0.1:9000")
    document = yaml.safe_load(registration.write(tmp_path / "as.yaml").read_text())
    assert document["sender_localpart"] == "hub"
    assert document["namespaces"]["users"] == [
        {"exclusive": True, "regex": NAMES.user_namespace()},
        {"exclusive": True, "regex": NAMES.cards_namespace()},
    ]
    assert document["namespaces"]["aliases"] == [
        {"exclusive": True, "regex": NAMES.alias_namespace()}
    ]
    assert document["namespaces"]["rooms"] == []
    assert document["as_token"] != document["hs_token"]
    assert stat.S_IMODE((tmp_path / "as.yaml").stat().st_mode) == 0o600


def test_homeserver_token_check() -> None:
    registration = AppServiceRegistration.generate(NAMES, "http://127.0.0.1:9000")
    assert registration.accepts_homeserver_token(registration.hs_token)
    assert not registration.accepts_homeserver_token(registration.as_token)
    assert not registration.accepts_homeserver_token("")


@pytest.mark.parametrize(
    ("as_token", "hs_token", "url"),
    [
        ("a" * 40, "a" * 40, "http://127.0.0.1:9000"),  # the same token both ways
        ("short", "b" * 40, "http://127.0.0.1:9000"),
        ("a" * 40, "b" * 40, "ftp://127.0.0.1:9000"),
    ],
)
def test_weak_registrations_are_refused(as_token: str, hs_token: str, url: str) -> None:
    with pytest.raises(InvalidRegistration):
        AppServiceRegistration(NAMES, url, as_token, hs_token)
