"""Build the Lambda bundle (``build/lambda.zip``) from ``app/`` and its runtime dependencies.

Dependencies are fetched as manylinux wheels for the Lambda architecture and Python
version the program declares (arm64, python3.12), never built from source, so the bundle
runs on Lambda whatever machine built it. ``--no-deps`` packs only ``app/`` (used by the
emulator and tests, which never execute the code).

Usage:
    python scripts/build_lambda_bundle.py [--output build/lambda.zip] [--no-deps]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "build" / "lambda.zip"

# What the function imports at run time; boto3 is pinned too rather than trusting the
# runtime's copy, so the bundle matches what CI tested.
RUNTIME_REQUIREMENTS = [
    "fastapi",
    "mangum",
    "pydantic",
    "pydantic-settings",
    "joserfc",
    "cedarpy",
    "cryptography",
    "boto3",
    "httpx",
    "fhir.resources",
    # EMR adapters (app/interop): HL7 v2 parsing and hardened XML for CDA
    "hl7",
    "defusedxml",
    # referral letters (app/referrals/letter.py)
    "reportlab",
    # Swagger UI and ReDoc assets, served by the app itself (app/main.py, docs/api.md)
    "fastapi-offline",
]
PLATFORM = "manylinux2014_aarch64"  # infra/components/functions.py: LAMBDA_ARCHITECTURE arm64
PYTHON_VERSION = "3.12"  # infra/components/functions.py: LAMBDA_RUNTIME python3.12

# Fixed timestamps make the zip byte-for-byte reproducible (stable code hash: no
# spurious Lambda updates when nothing changed).
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def pinned_requirements(constraints: Path = ROOT / "constraints.txt") -> list[str]:
    pins: dict[str, str] = {}
    if constraints.is_file():
        for line in constraints.read_text().splitlines():
            name, sep, version = line.strip().partition("==")
            if sep:
                pins[name.lower().replace("_", "-")] = version
    return [f"{r}=={pins[r]}" if r in pins else r for r in RUNTIME_REQUIREMENTS]


def download_dependencies(target: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-compile",
        "--target",
        str(target),
        "--platform",
        PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        *pinned_requirements(),
    ]
    subprocess.run(command, check=True)  # noqa: S603 - fixed argument list


def _files(base: Path, package: Path) -> Iterable[tuple[Path, str]]:
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path, path.relative_to(base).as_posix()


def write_bundle(output: Path, *, dependencies: Path | None = None) -> str:
    """Write the zip and return its SHA-256 (hex)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    entries = list(_files(ROOT, ROOT / "app"))
    if dependencies is not None:
        entries += list(_files(dependencies, dependencies))
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path, name in sorted(entries, key=lambda e: e[1]):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, path.read_bytes())
    return hashlib.sha256(output.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--no-deps", action="store_true", help="pack app/ only (the emulator never runs the code)"
    )
    args = parser.parse_args(argv)
    if args.no_deps:
        digest = write_bundle(args.output)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            download_dependencies(Path(tmp))
            digest = write_bundle(args.output, dependencies=Path(tmp))
    print(f"wrote {args.output} sha256={digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
