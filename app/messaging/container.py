"""The homeserver image's entrypoint: files from the task's environment, then Synapse.

The deployed homeserver's task (ECS Fargate, ``infra/components/messaging.py``) gets:

- ``HUB_HOMESERVER_CONFIG``: ``homeserver.yaml`` as the program declares it (JSON; no
  secret in it: :func:`app.messaging.homeserver.deployed_homeserver_config`);
- ``HUB_APPSERVICE_REGISTRATION``: the registration without its tokens (JSON);
- from Secrets Manager, injected by ECS: ``HUB_APPSERVICE_TOKENS`` (``as_token``,
  ``hs_token``), ``HUB_HOMESERVER_SECRETS`` (``signing_key`` as Synapse's key file line,
  ``macaroon_secret_key``, ``form_secret``) and ``PGPASSWORD`` (the RDS-managed password,
  read by libpq itself).

:func:`prepare` writes the configuration, the complete registration and the secret
files (owner-only, created that way) and :func:`main` then replaces this process with
Synapse. Nothing here logs a value.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from app.messaging.homeserver import DATA_DIR, SECRETS_DIR

CONFIG_FILE = "homeserver.yaml"


class ContainerMisconfigured(RuntimeError):
    """A variable the task must have is missing or not JSON (names it, never its value)."""


def _json(env: Mapping[str, str], name: str) -> dict[str, Any]:
    try:
        value = json.loads(env[name])
    except KeyError:
        raise ContainerMisconfigured(f"{name} is not set") from None
    except ValueError:
        raise ContainerMisconfigured(f"{name} is not JSON") from None
    if not isinstance(value, dict):
        raise ContainerMisconfigured(f"{name} is not a JSON object")
    return value


def _secret_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def prepare(
    env: Mapping[str, str],
    *,
    secrets_dir: Path = Path(SECRETS_DIR),
    data_dir: Path = Path(DATA_DIR),
) -> Path:
    """Write every file Synapse reads; returns the configuration's path."""
    config = _json(env, "HUB_HOMESERVER_CONFIG")
    registration = _json(env, "HUB_APPSERVICE_REGISTRATION")
    tokens = _json(env, "HUB_APPSERVICE_TOKENS")
    secrets = _json(env, "HUB_HOMESERVER_SECRETS")
    for name, source in (
        ("as_token", tokens),
        ("hs_token", tokens),
        ("signing_key", secrets),
        ("macaroon_secret_key", secrets),
        ("form_secret", secrets),
    ):
        if not isinstance(source.get(name), str) or not source[name]:
            raise ContainerMisconfigured(f"the secret lacks {name}")
    registration.update(as_token=tokens["as_token"], hs_token=tokens["hs_token"])
    _secret_file(secrets_dir / "appservice.yaml", yaml.safe_dump(registration, sort_keys=False))
    _secret_file(secrets_dir / "signing.key", secrets["signing_key"].strip() + "\n")
    _secret_file(secrets_dir / "macaroon_secret_key", secrets["macaroon_secret_key"])
    _secret_file(secrets_dir / "form_secret", secrets["form_secret"])
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "media").mkdir(exist_ok=True)
    path = data_dir / CONFIG_FILE
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def main() -> None:  # pragma: no cover - replaces the process with Synapse
    try:
        path = prepare(os.environ)
    except ContainerMisconfigured as error:
        print(f"homeserver entrypoint: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    os.execv(  # noqa: S606 - fixed argv, no shell
        sys.executable, [sys.executable, "-m", "synapse.app.homeserver", "-c", str(path)]
    )


if __name__ == "__main__":  # pragma: no cover
    main()
