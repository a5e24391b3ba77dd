"""The deployment record: what one emulated (or real) deploy of a stack created, as JSON.

One file per stack under ``<state dir>/deployments/<stack>.json``. It holds the stack
outputs; every resource with its type, logical name, component, physical id, protect
flag, declared inputs (secrets replaced by ``"[secret]"``) and the state consumers read;
the gaps (what the emulator could not enforce and which check covers it instead); the
time; the program release; and the endpoint. The post-deploy checks read it, the
rollout reads it, and the emulator reads the previous record to deploy idempotently.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.config_source import ROOT

SECRET_PLACEHOLDER = "[secret]"
RECORD_FORMAT = 1


@dataclass(frozen=True)
class Gap:
    """A declared property the emulator could not make the emulator enforce.

    Attributes:
        resource: the logical name of the resource (or ``*`` for every resource of a type).
        type: the resource's type token.
        property: the declared property (``policy``, ``securityPolicy``...).
        not_enforced: what the emulator does not enforce.
        reason: why.
        covered_by: the checks that cover the property instead: policy-pack rule ids
            (``api_uses_tls13_security_policy``) and verify check ids (``api.tls_policy``).
    """

    resource: str
    type: str
    property: str
    not_enforced: str
    reason: str
    covered_by: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["covered_by"] = list(self.covered_by)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Gap:
        return cls(
            resource=data["resource"],
            type=data["type"],
            property=data["property"],
            not_enforced=data["not_enforced"],
            reason=data["reason"],
            covered_by=tuple(data.get("covered_by", ())),
        )


@dataclass
class ResourceRecord:
    """One declared resource as deployed."""

    type: str
    name: str
    component: str
    id: str
    protect: bool
    inputs: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)
    # Physical details the emulator needs to find or delete the resource again
    # (e.g. the REST API id of a method); never read by checks.
    locator: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResourceRecord:
        return cls(
            type=data["type"],
            name=data["name"],
            component=data.get("component", ""),
            id=data["id"],
            protect=bool(data.get("protect", False)),
            inputs=dict(data.get("inputs", {})),
            state=dict(data.get("state", {})),
            locator=dict(data.get("locator", {})),
        )


@dataclass
class DeploymentRecord:
    """What a deploy of ``stack`` created; saved as JSON under ``<state_dir>/deployments``."""

    stack: str
    phase: int
    region: str
    account_id: str
    endpoint_url: str | None
    target: str  # "emulator" or "pulumi"
    deployed_at: str
    program_version: str
    release: str
    outputs: dict[str, Any]
    resources: list[ResourceRecord]
    gaps: list[Gap]
    # "deployed", or "partially-destroyed" after a destroy that kept protected resources
    status: str = "deployed"
    format: int = RECORD_FORMAT
    # services served by another endpoint than ``endpoint_url`` (boto3 name -> URL)
    endpoints: dict[str, str] = field(default_factory=dict)

    def resource(self, name: str) -> ResourceRecord:
        for r in self.resources:
            if r.name == name:
                return r
        raise KeyError(name)

    def of_type(self, type_token: str) -> list[ResourceRecord]:
        return [r for r in self.resources if r.type == type_token]

    def gaps_for(self, name: str) -> list[Gap]:
        return [g for g in self.gaps if g.resource in (name, "*")]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "stack": self.stack,
            "phase": self.phase,
            "region": self.region,
            "account_id": self.account_id,
            "endpoint_url": self.endpoint_url,
            "endpoints": self.endpoints,
            "target": self.target,
            "deployed_at": self.deployed_at,
            "program_version": self.program_version,
            "release": self.release,
            "status": self.status,
            "outputs": self.outputs,
            "resources": [r.to_json() for r in self.resources],
            "gaps": [g.to_json() for g in self.gaps],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeploymentRecord:
        return cls(
            stack=data["stack"],
            phase=int(data["phase"]),
            region=data["region"],
            account_id=data["account_id"],
            endpoint_url=data.get("endpoint_url"),
            endpoints=dict(data.get("endpoints", {})),
            target=data.get("target", "emulator"),
            deployed_at=data["deployed_at"],
            program_version=data["program_version"],
            release=data["release"],
            outputs=dict(data.get("outputs", {})),
            resources=[ResourceRecord.from_json(r) for r in data.get("resources", [])],
            gaps=[Gap.from_json(g) for g in data.get("gaps", [])],
            status=data.get("status", "deployed"),
            format=int(data.get("format", RECORD_FORMAT)),
        )

    @staticmethod
    def path_for(stack: str, state_dir: Path) -> Path:
        return Path(state_dir) / "deployments" / f"{stack}.json"

    def save(self, state_dir: Path) -> Path:
        """Write the record atomically (a crash never leaves half a record)."""
        path = self.path_for(self.stack, state_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, sort_keys=False, default=str) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, stack: str, state_dir: Path) -> DeploymentRecord | None:
        path = cls.path_for(stack, state_dir)
        if not path.is_file():
            return None
        return cls.from_json(json.loads(path.read_text()))


def load_record(stack: str, state_dir: Path = Path(".hub")) -> DeploymentRecord | None:
    """The last deployment record of ``stack``, or ``None`` if it was never deployed."""
    return DeploymentRecord.load(stack, state_dir)


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def git_short_sha() -> tuple[str | None, bool]:
    """(short HEAD sha, tree dirty?) of the repository, or (None, False) without git."""
    git = shutil.which("git")
    if git is None:
        return None, False

    def run(*args: str) -> str:
        return subprocess.run(  # noqa: S603 - fixed git argv, no shell
            [git, *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=5
        ).stdout.strip()

    try:
        sha = run("rev-parse", "--short", "HEAD")
        dirty = bool(run("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None, False
    return sha or None, dirty


def package_version() -> str:
    """``infra.__version__``; read from the installed distribution if the package was
    imported as a namespace (editable installs run from outside the repository)."""
    import infra

    version = getattr(infra, "__version__", None)
    if version:
        return str(version)
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("health-collab-hub")
    except PackageNotFoundError:
        return "0+unknown"


def program_version() -> str:
    """``infra.__version__`` plus the git short sha when available (``0.1.0+abc1234``)."""
    sha, _ = git_short_sha()
    return f"{package_version()}+{sha}" if sha else package_version()


def current_release() -> str:
    """The release a deploy carries: version, git short sha, and ``-dirty`` for local edits."""
    sha, dirty = git_short_sha()
    if not sha:
        return package_version()
    return f"{package_version()}+{sha}" + ("-dirty" if dirty else "")


# How the Pulumi runtime marks a secret value it hands to mocks (pulumi.runtime.rpc).
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def is_wrapped_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG


def unwrap_secrets(value: Any) -> Any:
    """The plain value, with every Pulumi secret wrapper removed (for the AWS calls)."""
    if is_wrapped_secret(value):
        return unwrap_secrets(value.get("value"))
    if isinstance(value, dict):
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [unwrap_secrets(v) for v in value]
    return value


def redact(value: Any, secrets: frozenset[str]) -> Any:
    """Replace secrets: values the runtime marks secret, strings holding a known secret
    value, and values under secret-named keys (``client_secret``, ``password``)."""
    if is_wrapped_secret(value):
        return SECRET_PLACEHOLDER
    if isinstance(value, dict):
        return {
            k: (
                SECRET_PLACEHOLDER if _secret_key(k) and v not in (None, "") else redact(v, secrets)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str) and any(s and s in value for s in secrets):
        return SECRET_PLACEHOLDER
    return value


def _secret_key(key: str) -> bool:
    lowered = key.lower().replace("_", "")
    return lowered in {"clientsecret", "password", "secretaccesskey", "privatekey"}
