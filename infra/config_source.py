"""Where stage configuration comes from: the Pulumi engine, or a stage file on disk.

Both paths produce the same raw mapping for ``infra.stage.parse_stage``, so a stage file
that previews and emulates cleanly is exactly what ``pulumi up`` will read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import yaml

from infra.stage import Stage, StageConfigError, parse_stage

PROJECT = "hub"
ROOT = Path(__file__).resolve().parent.parent
STAGES_DIR = ROOT / "stages"
SECRET_KEY_OIDC = "oidcClientSecrets"


def stage_file(stack: str) -> Path:
    return STAGES_DIR / f"Pulumi.{stack}.yaml"


def read_stage_file(stack: str, path: Path | None = None) -> dict[str, Any]:
    """The ``config:`` mapping of a stage file, keys as written (``hub:phase``...)."""
    path = path or stage_file(stack)
    if not path.is_file():
        raise StageConfigError("stack", f"a stage file at {path}", stack)
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise StageConfigError(
            _yaml_place(path, error), "valid YAML", _yaml_problem(error)
        ) from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise StageConfigError(f"{path.name}: config", "a mapping of configuration keys", config)
    return config


def _yaml_place(path: Path, error: yaml.YAMLError) -> str:
    """``Pulumi.<stack>.yaml line L, column C`` (1-based), where the parser stopped."""
    mark = getattr(error, "problem_mark", None)
    if mark is None:
        return path.name
    return f"{path.name} line {mark.line + 1}, column {mark.column + 1}"


def _yaml_problem(error: yaml.YAMLError) -> str:
    problem = getattr(error, "problem", None)
    context = getattr(error, "context", None)
    return " ".join(p for p in (context, problem) if p) or type(error).__name__


def split_namespace(config: dict[str, Any]) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(aws:region, project keys without prefix, project secrets) from a flat config."""
    region = config.get("aws:region")
    raw: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    for key, value in config.items():
        namespace, _, name = key.partition(":")
        if namespace != PROJECT:
            continue
        if name == SECRET_KEY_OIDC:
            secrets = _secret_mapping(value)
        else:
            raw[name] = value
    return region, raw, secrets


def _secret_mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and "secure" in value:
        raise StageConfigError(
            f"{PROJECT}:{SECRET_KEY_OIDC}",
            "a decrypted value (encrypted secrets are only readable under the Pulumi engine)",
            "secure: ...",
        )
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise StageConfigError(
            f"{PROJECT}:{SECRET_KEY_OIDC}", "a mapping provider -> secret", value
        )
    return value


def check_oidc_secrets(stage: Stage, secrets: dict[str, Any]) -> None:
    for provider in stage.federation:
        if provider.protocol == "OIDC" and not secrets.get(provider.name):
            raise StageConfigError(
                f"{PROJECT}:{SECRET_KEY_OIDC}.{provider.name}",
                "the OIDC client secret, set with `pulumi config set --secret`",
                missing=True,
            )


def stage_from_config(stack: str, config: dict[str, Any]) -> tuple[Stage, dict[str, Any]]:
    region, raw, secrets = split_namespace(config)
    stage = parse_stage(stack, region, raw)
    check_oidc_secrets(stage, secrets)
    return stage, secrets


def stage_from_pulumi_config() -> tuple[Stage, dict[str, pulumi.Output[str]]]:
    """Read the running stack's configuration through the Pulumi SDK."""
    from pulumi.runtime import config as runtime_config

    flat: dict[str, Any] = {}
    flat.update(runtime_config.get_config_env())
    flat.update(runtime_config.CONFIG.get())
    stage, secrets = stage_from_config(pulumi.get_stack(), flat)
    return stage, {k: pulumi.Output.secret(str(v)) for k, v in secrets.items()}


def pulumi_config_strings(config: dict[str, Any]) -> dict[str, str]:
    """Encode a stage file's config the way the engine passes it (JSON for structures)."""
    encoded: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, dict | list):
            encoded[key] = json.dumps(value)
        elif isinstance(value, bool):
            encoded[key] = "true" if value else "false"
        else:
            encoded[key] = str(value)
    return encoded
