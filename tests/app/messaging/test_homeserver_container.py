"""The deployed homeserver's entrypoint: files from the task's environment, secrets owner-only."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from app.messaging.container import ContainerMisconfigured, prepare
from app.messaging.homeserver import (
    DeployedHomeserver,
    deployed_homeserver_config,
    federation_problems,
    signing_key_file_text,
)

DEPLOYED = DeployedHomeserver(
    server_name="hub.example",
    public_baseurl="https://matrix.hub.example/",
    database_host="db.internal",
    database_name="synapse",
    database_user="synapse",
    media_bucket="hub-media",
    region="ap-east-1",
)


def environment() -> dict[str, str]:
    return {
        "HUB_HOMESERVER_CONFIG": json.dumps(deployed_homeserver_config(DEPLOYED)),
        "HUB_APPSERVICE_REGISTRATION": json.dumps({"id": "hub", "url": "https://as.internal"}),
        "HUB_APPSERVICE_TOKENS": json.dumps({"as_token": "a" * 40, "hs_token": "h" * 40}),
        "HUB_HOMESERVER_SECRETS": json.dumps(
            {
                "signing_key": signing_key_file_text(b"\x01" * 32),
                "macaroon_secret_key": "m" * 40,
                "form_secret": "f" * 40,
            }
        ),
    }


def test_prepare_writes_the_files_synapse_reads(tmp_path: Path) -> None:
    path = prepare(environment(), secrets_dir=tmp_path / "run", data_dir=tmp_path / "data")
    config = yaml.safe_load(path.read_text())
    assert federation_problems(config) == []
    assert config["macaroon_secret_key_path"].endswith("/macaroon_secret_key")
    registration = yaml.safe_load((tmp_path / "run" / "appservice.yaml").read_text())
    assert registration["as_token"] == "a" * 40 and registration["hs_token"] == "h" * 40
    for name in ("appservice.yaml", "signing.key", "macaroon_secret_key", "form_secret"):
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == 0o600, name
    assert "m" * 40 not in path.read_text()  # secrets never in the configuration


@pytest.mark.parametrize("missing", ["HUB_APPSERVICE_TOKENS", "HUB_HOMESERVER_SECRETS"])
def test_a_missing_secret_is_named_not_shown(tmp_path: Path, missing: str) -> None:
    env = environment()
    del env[missing]
    with pytest.raises(ContainerMisconfigured, match=missing):
        prepare(env, secrets_dir=tmp_path / "run", data_dir=tmp_path / "data")


def test_an_incomplete_secret_is_refused(tmp_path: Path) -> None:
    env = {**environment(), "HUB_APPSERVICE_TOKENS": json.dumps({"as_token": "a" * 40})}
    with pytest.raises(ContainerMisconfigured, match="hs_token"):
        prepare(env, secrets_dir=tmp_path / "run", data_dir=tmp_path / "data")


def test_federation_problems_fail_closed() -> None:
    config = deployed_homeserver_config(DEPLOYED)
    assert federation_problems(config) == []
    for breaking in (
        lambda c: c.pop("federation_domain_whitelist"),
        lambda c: c.update(federation_domain_whitelist=["matrix.org"]),
        lambda c: c["listeners"][0]["resources"][0]["names"].append("federation"),
        lambda c: c.pop("trusted_key_servers"),
        lambda c: c.update(enable_registration=True),
    ):
        broken = json.loads(json.dumps(config))
        breaking(broken)
        assert federation_problems(broken), breaking
