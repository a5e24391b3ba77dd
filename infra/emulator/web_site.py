"""The web client's site on an emulator: what a deployment's S3 objects hold, for the
platforms that do not deploy the whole program (the standalone platform), and which
emulator origin stands in for each AWS endpoint the site reaches (a recorded gap:
``infra.emulator.gaps.aws_endpoints_on_the_emulator``).

Guarantees: the objects are exactly those :mod:`infra.components.web_client` declares
(same keys, media types, cache control and security-header metadata, config from the
same function), so a standalone platform serves what a deployment serves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.components.web_client import (
    CONFIG_FILE,
    SITE_FILES,
    SITE_PREFIX,
    metadata_key,
    security_headers,
    site_config,
)
from infra.config_source import ROOT

DEFAULT_SITE_DIR = ROOT / "web" / "dist"


class SiteNotBuilt(FileNotFoundError):
    """The web client's build output is missing (``make web`` builds it)."""


@dataclass(frozen=True)
class SiteObject:
    key: str
    body: bytes
    content_type: str
    metadata: Mapping[str, str]


def site_objects(
    *,
    site_dir: Path = DEFAULT_SITE_DIR,
    region: str,
    shard_bucket: str,
    user_pool_id: str,
    client_id: str,
    token_seconds: int,
) -> list[SiteObject]:
    """The site's objects as the program declares them.

    Raises:
        SiteNotBuilt: a file of the site is missing from ``site_dir``.
    """
    metadata = {metadata_key(k): v for k, v in security_headers(region, shard_bucket).items()}
    objects = []
    for path, media_type in SITE_FILES.items():
        file = site_dir / path
        if not file.is_file():
            raise SiteNotBuilt(f"{file}: the web client is not built (run `make web`)")
        objects.append(SiteObject(SITE_PREFIX + path, file.read_bytes(), media_type, metadata))
    config = site_config(region, user_pool_id, client_id, token_seconds)
    objects.append(
        SiteObject(
            SITE_PREFIX + CONFIG_FILE,
            json.dumps(config, sort_keys=True).encode(),
            "application/json",
            metadata,
        )
    )
    return objects


def publish(s3: Any, bucket: str, objects: list[SiteObject]) -> None:
    for o in objects:
        s3.put_object(
            Bucket=bucket,
            Key=o.key,
            Body=o.body,
            ContentType=o.content_type,
            CacheControl="no-cache",
            Metadata=dict(o.metadata),
        )


def aws_stand_ins(
    region: str, shard_bucket: str, *, cognito_endpoint: str, s3_endpoint: str
) -> dict[str, str]:
    """AWS origin the site names -> the emulator origin that answers for it."""
    return {
        f"https://cognito-idp.{region}.amazonaws.com": cognito_endpoint.rstrip("/"),
        f"https://{shard_bucket}.s3.{region}.amazonaws.com": s3_endpoint.rstrip("/"),
    }
