"""Run a command against LocalStack 4.14 started on this host, without Docker.

For machines with no Docker engine (ours): LocalStack 4.14, the last release that needs no
auth token, runs as a plain Python process (``python -m localstack.runtime.main``). This
script

1. finds a Python >= 3.13 (LocalStack 4.14 needs it; ``HUB_LOCALSTACK_PYTHON``, then
   ``python3.13``/``python3.14`` on PATH, then pyenv's versions);
2. creates LocalStack's own pinned virtualenv once, cached outside the repository under
   ``${XDG_CACHE_HOME:-~/.cache}/hub/`` and keyed by the pins and that Python, so a change
   of pin makes a new one and a half-built one is never used;
3. starts LocalStack on a free loopback port with a private state directory, DNS server,
   TLS certificate download and analytics off, and waits for ``/_localstack/health``;
4. runs the given command with ``HUB_LOCALSTACK_ENDPOINT`` set to LocalStack's URL;
5. stops LocalStack afterwards, whether the command passed, failed or was interrupted.

The exit status is the command's. Missing Python >= 3.13 is exit status 3 with a message
saying what to install; ``--find-python`` only reports which Python would be used.

Usage:
    python scripts/localstack_host.py [--port N] [--keep-log PATH] -- COMMAND [ARGS...]
    python scripts/localstack_host.py --find-python
    python scripts/localstack_host.py --prepare     # build the cached venv only
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

LOCALSTACK_VERSION = "4.14.0"
# Pins that make localstack-core 4.14.0 install and start on a current Python: newer
# cbor2, pyOpenSSL and cryptography releases break its runtime extras.
PINS = (
    f"localstack-core[runtime]=={LOCALSTACK_VERSION}",
    "cbor2<5.7",
    "pyopenssl<24.3",
    "cryptography<44",
    "service_identity",
)
MIN_PYTHON = (3, 13)
HEALTH_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
NO_PYTHON = 3  # exit status: no Python >= 3.13 on this machine


class HostError(RuntimeError):
    """A step of starting LocalStack failed; the message says which and why."""


def python_version(executable: str) -> tuple[int, int] | None:
    """The (major, minor) of a Python executable, or None if it does not run."""
    try:
        out = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [executable, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def _pyenv_candidates() -> Iterator[str]:
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    pyenv = shutil.which("pyenv")
    if pyenv:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            root = subprocess.run(  # noqa: S603 - fixed argv, no shell
                [pyenv, "root"], capture_output=True, text=True, timeout=20, check=True
            ).stdout.strip()
    versions = Path(root) / "versions"
    if versions.is_dir():
        # Newest first; only plain CPython releases (3.13.0, 3.14.1), not envs or dev builds.
        for path in sorted(versions.iterdir(), key=_version_key, reverse=True):
            if path.name.replace(".", "").isdigit():
                yield str(path / "bin" / "python")


def _version_key(path: Path) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in path.name.split("."))
    except ValueError:
        return ()


def find_python() -> tuple[str | None, str]:
    """A Python >= 3.13 for LocalStack, and a sentence saying where it came from or why
    there is none."""
    explicit = os.environ.get("HUB_LOCALSTACK_PYTHON")
    if explicit:
        version = python_version(explicit)
        if version and version >= MIN_PYTHON:
            return explicit, f"HUB_LOCALSTACK_PYTHON={explicit} (Python {version[0]}.{version[1]})"
        return None, (
            f"HUB_LOCALSTACK_PYTHON={explicit} is not a Python >= 3.13 (found {version}); "
            "LocalStack 4.14 needs Python >= 3.13"
        )
    candidates = [shutil.which(name) for name in ("python3.14", "python3.13")]
    for candidate in [c for c in candidates if c] + list(_pyenv_candidates()):
        version = python_version(candidate)
        if version and version >= MIN_PYTHON:
            return candidate, f"{candidate} (Python {version[0]}.{version[1]})"
    return None, (
        "no Python >= 3.13 found (looked at HUB_LOCALSTACK_PYTHON, python3.14/python3.13 on "
        "PATH and pyenv's versions); LocalStack 4.14 needs one: install it, e.g. "
        "`pyenv install 3.13`, or set HUB_LOCALSTACK_PYTHON to its executable"
    )


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hub"


def venv_dir(python: str) -> Path:
    """The cached venv for these pins and this Python (a new key when either changes)."""
    resolved = str(Path(python).resolve())
    key = hashlib.sha256("\n".join((*PINS, resolved)).encode()).hexdigest()[:12]
    return cache_root() / f"localstack-{LOCALSTACK_VERSION.rsplit('.', 1)[0]}-{key}"


def ensure_venv(python: str, log: Path) -> Path:
    """Create the pinned LocalStack venv once; later calls reuse it.

    A ``.complete`` marker is written last, so an interrupted build is removed and
    redone rather than used. A file lock keeps two concurrent runs from building it twice.
    """
    target = venv_dir(python)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").exists():
            return target
        if target.exists():
            shutil.rmtree(target)
        print(f"localstack_host: creating {target} (once; about 2 minutes)", flush=True)
        steps = [
            [python, "-m", "venv", str(target)],
            [
                str(target / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                *PINS,
            ],
        ]
        with open(log, "a") as out:
            for step in steps:
                done = subprocess.run(  # noqa: S603 - fixed argv (venv, pip of the pins)
                    step, stdout=out, stderr=subprocess.STDOUT, check=False
                )
                if done.returncode != 0:
                    shutil.rmtree(target, ignore_errors=True)
                    raise HostError(
                        f"`{' '.join(step[:4])} ...` failed (exit {done.returncode}); see {log}"
                    )
        (target / ".complete").write_text("\n".join(PINS) + "\n")
        return target


def localstack_env(port: int, state: Path) -> dict[str, str]:
    """LocalStack's environment: loopback only, nothing fetched from the internet."""
    env = {
        k: v
        for k, v in os.environ.items()
        # LocalStack must not route its own internal calls to another emulator.
        if not k.startswith("AWS_ENDPOINT_URL") and k != "HUB_LOCALSTACK_ENDPOINT"
    }
    env.update(
        {
            "GATEWAY_LISTEN": f"127.0.0.1:{port}",
            "LOCALSTACK_HOST": f"127.0.0.1:{port}",
            "DNS_ADDRESS": "0",  # no DNS server (it would want port 53)
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",  # no analytics calls home
            "PERSISTENCE": "0",
            "LOCALSTACK_VOLUME_DIR": str(state / "volume"),
            "FILESYSTEM_ROOT": str(state / "root"),
            "LS_LOG": os.environ.get("LS_LOG", "warn"),
        }
    )
    for sub in ("volume", "root"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    return env


def wait_healthy(endpoint: str, process: subprocess.Popen[bytes], log: Path) -> dict[str, str]:
    """Poll ``/_localstack/health`` until it answers; return the service states."""
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise HostError(
                f"LocalStack exited with status {process.returncode} before it was healthy; "
                f"last log lines:\n{_tail(log)}"
            )
        try:
            health = f"{endpoint}/_localstack/health"  # http://127.0.0.1:<port>, ours
            with urllib.request.urlopen(health, timeout=2) as resp:  # noqa: S310
                body = json.loads(resp.read())
            services: dict[str, str] = body.get("services", {})
            return services
        except (urllib.error.URLError, OSError, ValueError):
            time.sleep(0.25)
    raise HostError(
        f"LocalStack did not answer {endpoint}/_localstack/health within "
        f"{HEALTH_TIMEOUT_S:.0f} s; last log lines:\n{_tail(log)}"
    )


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop LocalStack and everything it started (it runs in its own process group)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def running_localstack(python: str, port: int | None, log: Path) -> Iterator[str]:
    """LocalStack on 127.0.0.1 for the duration of the block; yields its endpoint URL."""
    venv = ensure_venv(python, log)
    if not port:
        # Imported here: --find-python and --prepare run under any python3 (.ci/run),
        # which may not have the project installed; running LocalStack needs the venv.
        from infra.emulator.server import free_port

        port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="hub-localstack-") as state:
        with open(log, "ab") as out:
            process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [str(venv / "bin" / "python"), "-m", "localstack.runtime.main"],
                env=localstack_env(port, Path(state)),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own group: stopped as a whole, not by our ^C
            )
        try:
            started = time.monotonic()
            services = wait_healthy(endpoint, process, log)
            print(
                f"localstack_host: LocalStack {LOCALSTACK_VERSION} healthy at {endpoint} "
                f"after {time.monotonic() - started:.1f} s ({len(services)} services listed; "
                f"log: {log})",
                flush=True,
            )
            yield endpoint
        finally:
            stop(process)


def _raise_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=None, help="gateway port (default: free)")
    parser.add_argument("--keep-log", type=Path, default=None, help="LocalStack's log file")
    parser.add_argument("--find-python", action="store_true", help="report the Python only")
    parser.add_argument("--prepare", action="store_true", help="build the cached venv only")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command

    python, where = find_python()
    if args.find_python:
        print(where)
        return 0 if python else NO_PYTHON
    if python is None:
        print(f"localstack_host: {where}", file=sys.stderr)
        return NO_PYTHON
    if not command and not args.prepare:
        parser.error("give the command to run after --")

    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    log = args.keep_log or Path(tempfile.gettempdir()) / f"hub-localstack-{os.getpid()}.log"
    try:
        if args.prepare:
            print(f"localstack_host: venv ready at {ensure_venv(python, log)}")
            return 0
        with running_localstack(python, args.port, log) as endpoint:
            env = {**os.environ, "HUB_LOCALSTACK_ENDPOINT": endpoint}
            # the caller's own command, as `make test-localstack` gives it: running it is the point
            return subprocess.run(command, env=env, check=False).returncode  # noqa: S603
    except HostError as error:
        print(f"localstack_host: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("localstack_host: interrupted; LocalStack stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
