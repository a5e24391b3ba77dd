"""Shared pieces of the durable-ledger tests (fixtures live in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.ledger.service import Ledger, build_ledger


@dataclass
class LedgerEnv:
    endpoint: str
    dynamodb: Any
    kms: Any
    s3: Any
    table_name: str
    key_arn: str
    bucket: str

    def ledger(self, **kwargs: Any) -> Ledger:
        return build_ledger(
            self.dynamodb,
            self.table_name,
            kms=self.kms,
            s3=self.s3,
            signing_key_arn=self.key_arn,
            checkpoint_bucket=self.bucket,
            origin="test-ledger",
            **kwargs,
        )
