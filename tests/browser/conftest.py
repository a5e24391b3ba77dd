"""The browser tier (``make test-browser``, marker ``browser``): Debian's Chromium driven by
Playwright against the web client served by a standalone platform through the local API
gateway, as the program declares it (``/v1/web/``, S3 integration, CSP).

Playwright never downloads a browser here: it launches ``/usr/bin/chromium`` (Debian's
``chromium`` package) with the flags this network needs. Screenshots of every screen, in
English and Traditional Chinese, go to ``HUB_BROWSER_ARTEFACTS`` (default
``build/browser-artefacts``); each screen is also checked with axe-core (WCAG 2.2 AA rules)
and every page's console is watched for Content-Security-Policy violations.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.config_source import ROOT

CHROMIUM = os.environ.get("HUB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SITE = ROOT / "web" / "dist"
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
ARTEFACTS = Path(os.environ.get("HUB_BROWSER_ARTEFACTS", ROOT / "build" / "browser-artefacts"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_prerequisites() -> None:
    """Chromium, the built site and axe-core must be there; ``make test-browser`` sees to
    all three, so a missing one is a failure naming what to do, not a skip."""
    missing = []
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        missing.append(f"{CHROMIUM} (apt-get install chromium fonts-noto-cjk)")
    if not (SITE / "index.html").is_file():
        missing.append(f"{SITE} (make web)")
    if not AXE.is_file():
        missing.append(f"{AXE} (cd web && npm ci)")
    if missing:
        pytest.fail("browser tier prerequisites missing: " + "; ".join(missing))


@pytest.fixture(scope="session")
def web_platform(moto_endpoint: str, browser_prerequisites: None) -> Iterator[dict[str, Any]]:
    from infra.standalone_platform import standalone_platform

    with standalone_platform(moto_endpoint, web=True) as (document, _):
        yield document


@pytest.fixture(scope="session")
def chromium(browser_prerequisites: None) -> Iterator[Any]:
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def artefacts() -> Path:
    shots = ARTEFACTS / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    return shots


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # the screens fixture reads it to shoot every open page of a failed walk-through
    report = yield
    if report.when == "call":
        item.browser_failed = report.failed  # type: ignore[attr-defined]
    return report
