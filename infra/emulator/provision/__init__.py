"""Provisioners: for each resource type the program declares, how to create it on an AWS
endpoint, update it in place, find it again, and delete it.

Each provisioner is registered for one Pulumi type token. ``ensure`` is idempotent: it
finds the resource by its physical name (or, for resources without one, by the locator
kept in the previous deployment record), updates it when it exists and creates it when
it does not, so deploying twice never duplicates anything. Where the emulator cannot
enforce a declared property, the provisioner records a :class:`~infra.emulator.record.Gap`
naming the check that covers it instead. An unregistered type is an error.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.emulator.record import Gap, ResourceRecord

T = TypeVar("T")


class UnsupportedResourceType(RuntimeError):
    """The program declared a resource type the emulator cannot create."""

    def __init__(self, type_token: str, name: str = ""):
        self.type_token = type_token
        where = f" (resource {name!r})" if name else ""
        super().__init__(
            f"the emulator cannot create resources of type {type_token}{where}: no "
            "provisioner is registered for it; add one in infra/emulator/provision/ "
            "rather than faking it"
        )


@dataclass
class Declared:
    """A resource as the program declares it, plus what the last deploy recorded."""

    type: str
    name: str
    inputs: dict[str, Any]
    protect: bool
    previous: ResourceRecord | None


@dataclass
class Provisioned:
    """The physical id, the state consumers read, and how to find the resource again."""

    id: str
    state: dict[str, Any] = field(default_factory=dict)
    locator: dict[str, Any] = field(default_factory=dict)


_CLIENT_CONFIG = Config(
    retries={"max_attempts": 2, "mode": "standard"},
    connect_timeout=5,
    read_timeout=60,
    max_pool_connections=16,
)
_CLIENTS: dict[tuple[Any, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


class Context:
    """Per-deploy shared state: cached clients, account, gaps. Thread-safe.

    The mock runtime registers independent resources from several threads at once;
    boto3 clients are thread-safe once created, so they are created under a lock and
    cached per service.

    Args:
        endpoint_url: the endpoint of every service (``None``: boto3's own resolution).
        region: the stack's region.
        endpoints: per-service endpoints that replace ``endpoint_url`` for those
            services (boto3 service names: ``{"s3": ..., "kms": ...}``), so a deploy can
            put the services one emulator covers on it and keep the rest on another.
    """

    def __init__(
        self,
        endpoint_url: str | None,
        region: str,
        endpoints: Mapping[str, str] | None = None,
    ):
        self.endpoint_url = endpoint_url
        self.endpoints = dict(endpoints or {})
        self.region = region
        self.account_id = ""
        self._lock = threading.Lock()
        self._gaps: dict[tuple[str, str, str], Gap] = {}
        # Signalled whenever a bucket policy lands, for S3 logging targets (see storage).
        self.bucket_policy_changed = threading.Condition()

    def endpoint_for(self, service: str) -> str | None:
        """The endpoint that serves ``service`` in this deploy."""
        return self.endpoints.get(service, self.endpoint_url)

    def served_by_localstack(self, service: str) -> bool:
        """Whether ``service``'s endpoint is LocalStack (its health route answers).

        Asked by provisioners that record LocalStack's own gaps; the answer is probed
        once per endpoint and process, never assumed from a name.
        """
        endpoint = self.endpoint_for(service)
        return endpoint is not None and is_localstack(endpoint)

    def emulator_name(self, service: str) -> str:
        """How gaps name the emulator serving ``service``: LocalStack or moto."""
        from infra.emulator.gaps import LOCALSTACK, MOTO

        return LOCALSTACK if self.served_by_localstack(service) else MOTO

    def client(self, service: str, *, on: str | None = None) -> Any:
        """A cached client for ``service`` on its endpoint (or on ``on``'s endpoint: the
        S3 of the emulator that serves CloudTrail, say)."""
        # Credentials come from the environment (boto3's chain); keep one client per
        # access key so a switch of account (tests use STS-assumed roles) is honoured.
        endpoint_url = self.endpoint_for(on or service)
        key = (endpoint_url, self.region, os.environ.get("AWS_ACCESS_KEY_ID"), service)
        with _CLIENTS_LOCK:
            existing = _CLIENTS.get(key)
            if existing is None:
                # Creating a client loads its service model (tenths of a second): cache
                # it for the life of the process, so later stacks and redeploys reuse it.
                session: Any = boto3.session.Session(region_name=self.region)
                existing = session.client(service, endpoint_url=endpoint_url, config=_CLIENT_CONFIG)
                _CLIENTS[key] = existing
            return existing

    def add_gap(self, gap: Gap) -> None:
        with self._lock:
            self._gaps[(gap.resource, gap.type, gap.property)] = gap

    def gaps(self) -> list[Gap]:
        with self._lock:
            return list(self._gaps.values())

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{resource}"


_LOCALSTACK_PROBES: dict[str, bool] = {}


def is_localstack(endpoint_url: str) -> bool:
    """True if ``endpoint_url`` is a LocalStack gateway (``/_localstack/health`` lists
    services); memoised per endpoint for the process."""
    with _CLIENTS_LOCK:
        known = _LOCALSTACK_PROBES.get(endpoint_url)
    if known is not None:
        return known
    import json
    import urllib.error
    import urllib.request

    url = endpoint_url.rstrip("/") + "/_localstack/health"
    answer = False
    if url.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (scheme checked)
                answer = isinstance(json.loads(response.read()).get("services"), dict)
        except (urllib.error.URLError, OSError, ValueError, AttributeError):
            answer = False
    with _CLIENTS_LOCK:
        _LOCALSTACK_PROBES[endpoint_url] = answer
    return answer


class Provisioner(ABC):
    """Create, update, find and delete one resource type. Subclasses set ``type_token``."""

    type_token: str = ""

    @abstractmethod
    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        """Create or update the resource; return its id and the state consumers read."""

    @abstractmethod
    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        """Delete the resource; a resource that is already gone is not an error."""

    def attached_to(self, record: ResourceRecord) -> str | None:
        """The physical id of the resource this one only configures (kept together)."""
        return None

    def holds(self, record: ResourceRecord) -> tuple[str, ...]:
        """Physical ids of resources this one uses and AWS will not delete while it
        exists (kept with it when it is protected)."""
        return ()


REGISTRY: dict[str, Provisioner] = {}


def provisioner(cls: type[Provisioner]) -> type[Provisioner]:
    """Class decorator: register one instance for its ``type_token``."""
    if not cls.type_token or cls.type_token in REGISTRY:
        raise ValueError(f"bad or duplicate provisioner type token {cls.type_token!r}")
    REGISTRY[cls.type_token] = cls()
    return cls


def provisioner_for(type_token: str, name: str = "") -> Provisioner:
    _load_all()
    found = REGISTRY.get(type_token)
    if found is None:
        raise UnsupportedResourceType(type_token, name)
    return found


def supported_types() -> list[str]:
    _load_all()
    return sorted(REGISTRY)


_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    # Importing each module registers its provisioners.
    from infra.emulator.provision import (  # noqa: F401
        api,
        backup,
        identity,
        messaging,
        network,
        observability,
        security,
        storage,
    )

    _loaded = True


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def ignore_missing(call: Callable[[], Any], *codes: str) -> None:
    """Run a delete call; a resource that is already gone is not an error."""
    missing = set(codes) | {
        "ResourceNotFoundException",
        "NotFoundException",
        "NoSuchEntity",
        "NoSuchBucket",
        "NotFound",
        "WAFNonexistentItemException",
    }
    try:
        call()
    except ClientError as error:
        if error_code(error) not in missing:
            raise


def existing(find: Callable[[], T], *missing: str) -> T | None:
    """What ``find`` answers, or None when AWS answers that the resource is not there
    (one of the ``missing`` error codes): the find of a find-or-create, or of a delete
    that first reads what it deletes. Any other error is raised."""
    try:
        return find()
    except ClientError as error:
        if error_code(error) in missing:
            return None
        raise


def as_int(value: Any) -> int:
    return int(float(value))


def tag_list(
    tags: dict[str, str] | None, key: str = "Key", value: str = "Value"
) -> list[dict[str, str]]:
    return [{key: k, value: str(v)} for k, v in sorted((tags or {}).items())]


def drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}
