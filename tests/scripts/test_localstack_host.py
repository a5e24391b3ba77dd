"""scripts/localstack_host.py: finds Python >= 3.13, caches its venv by pins, and runs a
command with LocalStack up, stopping it afterwards whatever the command does.

LocalStack itself is replaced by a stand-in ``localstack.runtime.main`` that serves the
health route on ``GATEWAY_LISTEN``, so these tests need neither Python 3.13 nor the
network; ``make test-localstack`` runs the real thing.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def host() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "localstack_host", ROOT / "scripts" / "localstack_host.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


FAKE_MAIN = """
import http.server, json, os, sys
if os.environ.get("FAKE_LOCALSTACK_FAIL"):
    print("fake LocalStack: cannot start", flush=True)
    sys.exit(5)
host, port = os.environ["GATEWAY_LISTEN"].rsplit(":", 1)
with open(os.environ["FAKE_LOCALSTACK_PIDFILE"], "w") as f:
    f.write(str(os.getpid()))

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(json.dumps({"services": {"s3": "running"}}).encode())
    def log_message(self, *args):
        pass

http.server.HTTPServer((host, int(port)), Health).serve_forever()
"""


@pytest.fixture
def fake_localstack(host: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in LocalStack venv; returns the file the fake writes its pid to."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    package = tmp_path / "fake" / "localstack" / "runtime"
    package.mkdir(parents=True)
    for init in (package.parent / "__init__.py", package / "__init__.py"):
        init.write_text("")
    (package / "main.py").write_text(textwrap.dedent(FAKE_MAIN))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "fake"))
    pidfile = tmp_path / "pid"
    monkeypatch.setenv("FAKE_LOCALSTACK_PIDFILE", str(pidfile))
    monkeypatch.setattr(host, "ensure_venv", lambda python, log: venv)
    monkeypatch.setattr(host, "find_python", lambda: (sys.executable, "test"))
    return pidfile


def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _refused(endpoint: str) -> bool:
    port = int(endpoint.rsplit(":", 1)[1])
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_runs_the_command_with_the_endpoint_and_stops_localstack_after(
    host: ModuleType, fake_localstack: Path, tmp_path: Path
) -> None:
    seen = tmp_path / "seen"
    command = (
        f"import os, sys; open({str(seen)!r}, 'w').write(os.environ['HUB_LOCALSTACK_ENDPOINT'])"
        "; sys.exit(7)"
    )
    status = host.main(["--keep-log", str(tmp_path / "log"), "--", sys.executable, "-c", command])
    assert status == 7  # the command's own status, failure included
    endpoint = seen.read_text()
    assert endpoint.startswith("http://127.0.0.1:")
    assert _gone(int(fake_localstack.read_text()))
    assert _refused(endpoint)


def test_a_localstack_that_dies_at_start_is_reported_with_its_log(
    host: ModuleType,
    fake_localstack: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FAKE_LOCALSTACK_FAIL", "1")
    ran = tmp_path / "ran"
    status = host.main(
        ["--keep-log", str(tmp_path / "log"), "--", "touch", str(ran)]  # must not run
    )
    assert status == 2
    err = capsys.readouterr().err
    assert "exited with status 5 before it was healthy" in err
    assert "fake LocalStack: cannot start" in err
    assert not ran.exists()


def test_an_interrupted_command_still_stops_localstack(
    host: ModuleType, fake_localstack: Path, tmp_path: Path
) -> None:
    # The command signals the script itself, as a CI runner's timeout would.
    command = f"import os, signal, time; os.kill({os.getpid()}, signal.SIGTERM); time.sleep(30)"
    previous = signal.getsignal(signal.SIGTERM)
    try:
        status = host.main(
            ["--keep-log", str(tmp_path / "log"), "--", sys.executable, "-c", command]
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert status == 130
    assert _gone(int(fake_localstack.read_text()))


def test_without_python_313_it_says_what_to_install(
    host: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HUB_LOCALSTACK_PYTHON", sys.executable)  # the suite's 3.11/3.12
    if sys.version_info >= (3, 13):
        pytest.skip("the suite itself runs on Python >= 3.13")
    assert host.main(["--find-python"]) == host.NO_PYTHON
    assert "not a Python >= 3.13" in capsys.readouterr().out
    assert host.main(["--", "true"]) == host.NO_PYTHON
    assert "LocalStack 4.14 needs Python >= 3.13" in capsys.readouterr().err


def test_the_venv_is_cached_outside_the_repo_and_keyed_by_the_pins(
    host: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = host.venv_dir(sys.executable)
    assert first.parent == tmp_path / "hub" and first.name.startswith("localstack-4.14-")
    monkeypatch.setattr(host, "PINS", (*host.PINS, "extra==1"))
    assert host.venv_dir(sys.executable) != first


def test_a_complete_venv_is_reused_and_a_half_built_one_is_not(
    host: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    target = host.venv_dir(sys.executable)
    target.mkdir(parents=True)
    (target / ".complete").write_text("")
    assert host.ensure_venv(sys.executable, tmp_path / "log") == target
    (target / ".complete").unlink()
    calls: list[list[str]] = []

    def refuse(step: list[str], **_: object) -> object:
        calls.append(step)
        return type("Done", (), {"returncode": 1})()

    monkeypatch.setattr(host.subprocess, "run", refuse)
    with pytest.raises(host.HostError, match="failed"):
        host.ensure_venv(sys.executable, tmp_path / "log")
    assert calls and calls[0][1:3] == ["-m", "venv"]  # rebuilt from scratch, not reused
    assert not target.exists()
