"""Record tests' harness (the ``records`` fixture is in conftest.py): the session hub plus a
shard bucket, a records key and an app whose record service uses small shards (64 KiB), so
a few hundred KiB make many shards.

S3 and KMS clients come from ``aws_backend`` (the LocalStack tier can redirect them);
DynamoDB, Cognito and the groups/audit state are the session hub's. Fault-injection tests
build their own service around wrapped clients with :meth:`RecordsHarness.app_with`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from api_contract import CONTRACT, checked
from botocore.exceptions import ClientError
from fastapi.testclient import TestClient
from hub_testkit import Hub

from app.dependencies import Services
from app.main import create_app
from app.records.service import RecordService, build_record_service
from app.referrals.repository import ReferralRepository
from app.settings import Settings

SHARD = 64 * 1024
MAX_BYTES = 4 * 1024 * 1024


class SimulatedCrash(BaseException):
    """The process dies here: no ``except Exception`` cleanup runs."""


def client_error(code: str, operation: str, status: int = 500) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": "injected"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


class FailingCalls:
    """A proxy over a boto3 client (or the audit trail) whose ``method`` raises
    ``error()`` on the listed call numbers (1-based); with ``after=True`` the real call
    runs first and only its response is lost. Every other attribute is the real one."""

    def __init__(
        self,
        inner: Any,
        method: str,
        error: Callable[[], BaseException],
        on: Iterable[int] = (1,),
        *,
        after: bool = False,
        before: Callable[[], None] | None = None,
    ):
        self._inner = inner
        self._method = method
        self._error = error
        self._on = set(on)
        self._after = after
        self._before = before
        self._lock = threading.Lock()
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls += 1
                n = self.calls
            if n not in self._on:
                return attr(*args, **kwargs)
            if self._before is not None:
                self._before()
                return attr(*args, **kwargs)
            if self._after:
                attr(*args, **kwargs)
            raise self._error()

        return call


@dataclass
class RecordsHarness:
    hub: Hub
    settings: Settings
    services: Services
    client: TestClient
    s3: Any
    kms: Any
    dynamodb: Any
    bucket: str
    key_arn: str

    @property
    def records(self) -> RecordService:
        assert self.services.records is not None
        return self.services.records

    def headers(self, username: str, **extra: str) -> dict[str, str]:
        return {**self.hub.headers(username), **extra}

    def service_with(self, **clients: Any) -> RecordService:
        """A record service like the app's, with some clients (or the audit trail,
        under ``audit``) replaced, e.g. by fault-injecting proxies."""
        services = self.services
        audit = clients.pop("audit", services.audit)
        base = {"s3": self.s3, "kms": self.kms, "dynamodb": self.dynamodb}
        return build_record_service(
            self.settings,
            None,
            {**base, **clients},
            groups=services.groups._repo,
            gate=services.gate,
            audit=audit,
            break_glass=services.break_glass,
            hash_key=services.groups._key,
            clock=self.hub.clock,
            patients=services.patients,
            consents=services.consents,
            emergency=ReferralRepository(self.dynamodb, self.settings.table_groups),
        )

    def app_with(self, service: RecordService) -> TestClient:
        """An app on the same state with another record service. Not entered as a context
        manager: its lifespan would start and stop the shared ledger's sequencer."""
        services = dataclasses.replace(self.services, records=service)
        app = create_app(self.settings, services=services)
        checked(app, CONTRACT)
        return TestClient(app)

    def committed_shards(self) -> dict[str, list[str]]:
        """Shard keys of every active committed version, by ``record_id/version``."""
        items = self._scan(
            FilterExpression="begins_with(sk, :v) AND #s = :active",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":v": {"S": "VERSION#"}, ":active": {"S": "active"}},
        )
        out = {}
        for i in items:
            upload = i["upload_id"]["S"]
            keys = [f"shards/{upload}/{k['S']}" for k in i["shard_keys"]["L"]]
            out[f"{i['record_id']['S']}/{i['version']['N']}"] = keys
        return out

    def live_committed_keys(self) -> set[str]:
        """Shards of committed versions that exist now (tamper tests delete some)."""
        committed = {k for keys in self.committed_shards().values() for k in keys}
        return committed & self.live_keys()

    def live_keys(self) -> set[str]:
        return {k.split("@", 1)[0] for k in self.shard_objects()}

    def shard_objects(self) -> dict[str, Any]:
        """Every object under shards/ (key -> LastModified), every version counted."""
        found: dict[str, Any] = {}
        paginator = self.s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix="shards/"):
            for v in page.get("Versions", []):
                found[f"{v['Key']}@{v['VersionId']}"] = v["LastModified"]
        return found

    def record_ids(self) -> set[str]:
        """Record ids with a committed META item (what any reader could ever see)."""
        items = self._scan(
            FilterExpression="sk = :meta", ExpressionAttributeValues={":meta": {"S": "META"}}
        )
        return {i["record_id"]["S"] for i in items}

    def _scan(self, **kwargs: Any) -> list[dict[str, Any]]:
        """Every matching item of the records table: all pages (a filter applies per 1 MB
        page, so one page can miss items once the session's table outgrows it)."""
        pages = self.dynamodb.get_paginator("scan").paginate(
            TableName=self.settings.table_records, ConsistentRead=True, **kwargs
        )
        return [item for page in pages for item in page["Items"]]
