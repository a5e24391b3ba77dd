"""The Lambda code the emulator uploads: a zip of the repository's ``app/`` package source.

The real bundle (``scripts/build_lambda_bundle.py``) carries manylinux wheels and is
built for the Lambda runtime; the emulator only needs a valid zip, because moto cannot
execute functions without Docker (a recorded gap). The zip is deterministic: the same
source gives the same bytes and the same ``CodeSha256``, so a redeploy without code
changes does not update the function.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from functools import lru_cache
from pathlib import Path

from infra.config_source import ROOT

_FIXED_TIME = (2020, 1, 1, 0, 0, 0)


@lru_cache(maxsize=1)
def app_source_zip(root: Path = ROOT) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        app_dir = root / "app"
        files = sorted(
            p
            for p in app_dir.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        )
        for path in files:
            info = zipfile.ZipInfo(str(path.relative_to(root)), date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
        if not files:
            # An empty zip is refused; keep a marker so the function can still be created.
            info = zipfile.ZipInfo("app/__init__.py", date_time=_FIXED_TIME)
            archive.writestr(info, b'"""Placeholder: app/ had no source files."""\n')
    return buffer.getvalue()


def code_sha256(data: bytes) -> str:
    """Lambda's ``CodeSha256``: base64 of the SHA-256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()
