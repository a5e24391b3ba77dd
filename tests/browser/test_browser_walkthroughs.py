"""The web client in a real browser (Debian's Chromium), against a standalone platform
serving the site through the local API gateway as the program declares it.

Walk-throughs: sign-in with SRP and TOTP (enrolment, then the challenge), tokens kept out
of storage, refreshed and dropped on idle; a consultation group, summon, accept and
revocation seen on the next action; records sealed in the browser (50 MiB) straight to
S3 through issue 17's upload sessions, opened again in another browser and by the Python
doctor's client (hubclient), and one sealed by hubclient opened in the browser; a
referral sent, accepted and its letter fetched; the auditor's inclusion check in the
browser, passing, then failing once the entry is tampered with; an institution admin's
affiliations and approvals (issue 11's routes, on a phase 3 platform where
self-registration is open). Every screen is shot in English and Traditional Chinese and
checked with axe-core; no page may log a Content-Security-Policy violation.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.local import AuthenticatorApp, totp_code
from infra.config_source import ROOT

AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"

LANGS = ("en", "zh-HK")
CJK = re.compile(r"[\u4e00-\u9fff]")
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
# TOTP secrets enrolled at first sign-in, by username: the browser's users' authenticator
# app, shared with the API calls the tests make themselves (demo_bearer); one per user
# pool, since the phase 1 and phase 3 platforms have users of the same names.
AUTHENTICATORS: dict[str, AuthenticatorApp] = {}


def _authenticator(platform: dict[str, Any]) -> AuthenticatorApp:
    pool = platform["stacks"][_stack(platform)]["outputs"]["userPoolId"]
    return AUTHENTICATORS.setdefault(pool, AuthenticatorApp())


def _stack(platform: dict[str, Any]) -> str:
    return str(next(iter(platform["stacks"])))


def _user(platform: dict[str, Any], **match: Any) -> dict[str, Any]:
    for user in platform["demoUsers"]:
        if all(user.get(k) == v for k, v in match.items()):
            return dict(user)
    raise LookupError(f"no demo user with {match}")


class Screen:
    """One signed-in browser context and its page, with the checks every screen gets."""

    def __init__(self, chromium: Any, platform: dict[str, Any], artefacts: Path, clock: bool):
        self.context = chromium.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.platform = platform
        self.artefacts = artefacts
        self.csp_violations: list[str] = []
        self.page.on("console", self._console)
        if clock:
            self.page.clock.install()
        self.page.goto(platform["webUrl"])

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.csp_violations.append(message.text)

    def close(self) -> None:
        assert self.csp_violations == [], self.csp_violations
        self.context.close()

    def heading(self, text: str | re.Pattern[str]) -> None:
        self.page.get_by_role("heading", level=1, name=text).wait_for(timeout=20_000)

    def sign_in(self, user: dict[str, Any]) -> None:
        page = self.page
        page.get_by_label("Username").fill(user["username"])
        page.get_by_label("Password").fill(user["password"])
        page.get_by_role("button", name="Continue").click()
        authenticator = _authenticator(self.platform)
        secret = authenticator.secret(user["username"])
        if secret is None:
            page.locator("#totp-secret").wait_for(timeout=20_000)
            secret = page.locator("#totp-secret").inner_text().strip()
            authenticator.enrol(user["username"], secret)
            page.get_by_label("Authenticator code").fill(totp_code(secret))
            page.get_by_role("button", name="Confirm and sign in").click()
        else:
            page.get_by_label("Authenticator code").fill(totp_code(secret))
            page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Sign out").wait_for(timeout=20_000)
        page.locator(".who").filter(has_text="Signed in").wait_for(timeout=20_000)

    def go(self, route: str) -> None:
        self.page.goto(f"{self.platform['webUrl']}#{route}")

    def language(self, lang: str) -> None:
        self.page.locator(".language select").select_option(lang)
        self.page.locator(f"html[lang='{lang}']").wait_for(state="attached")

    def axe(self) -> list[dict[str, Any]]:
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            # evaluated through the driver, as a browser extension would: the page's CSP
            # (script-src 'self') rightly refuses an injected <script>
            self.page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
        result = self.page.evaluate(
            "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
            ".violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))",
            WCAG,
        )
        return list(result)

    def capture(self, name: str) -> None:
        """Screenshot this screen in both languages, each checked with axe-core."""
        for lang in LANGS:
            self.language(lang)
            if lang == "zh-HK":
                # every label is Chinese; user data (titles, ids) stays as entered
                for part in ("header", "main", "footer"):
                    text = self.page.locator(part).first.inner_text()
                    assert CJK.search(text), f"{name}: no Chinese in the {part}: {text[:200]!r}"
            violations = self.axe()
            assert violations == [], f"{name} ({lang}): {json.dumps(violations, indent=1)}"
            self.page.screenshot(path=str(self.artefacts / f"{name}-{lang}.png"), full_page=True)
        self.language("en")


@pytest.fixture
def screens(
    request: pytest.FixtureRequest, chromium: Any, web_platform: dict[str, Any], artefacts: Path
) -> Iterator[Any]:
    opened: list[Screen] = []

    def open_screen(
        user: dict[str, Any] | None = None,
        *,
        clock: bool = False,
        platform: dict[str, Any] | None = None,
    ) -> Screen:
        screen = Screen(chromium, platform or web_platform, artefacts, clock)
        opened.append(screen)
        if user is not None:
            screen.heading("Sign in")
            screen.sign_in(user)
        return screen

    yield open_screen
    if getattr(request.node, "browser_failed", False):
        for n, screen in enumerate(opened):
            path = artefacts.parent / f"failure-{request.node.name}-{n}.png"
            screen.page.screenshot(path=str(path), full_page=True)
    for screen in opened:
        screen.close()


def test_the_site_is_served_by_the_gateway_with_a_strict_policy(
    web_platform: dict[str, Any],
) -> None:
    url = web_platform["webUrl"]
    assert url == f"{web_platform['apiBaseUrl']}/web/"
    with urllib.request.urlopen(url) as response:
        csp = response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-cache"
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    # the API is the page's own origin; the only others are the emulator's stand-ins
    # for the stack's Cognito and shard-bucket endpoints
    endpoint = web_platform["emulatorEndpoint"]
    assert set(directives["connect-src"].split()) == {"'self'", endpoint}
    assert "unsafe" not in csp


def test_sign_in_with_totp_tokens_in_memory_refreshed_and_idle_sign_out(screens: Any) -> None:
    platform_user = None
    first = screens(clock=True)
    platform_user = _user(first.platform, role="doctor", institution="harbour-cardiac-alliance")
    first.heading("Sign in")
    first.capture("01-sign-in")
    page = first.page
    page.get_by_label("Username").fill(platform_user["username"])
    page.get_by_label("Password").fill(platform_user["password"])
    page.get_by_role("button", name="Continue").click()
    page.locator("#totp-secret").wait_for(timeout=20_000)
    first.capture("02-authenticator-enrolment")
    secret = page.locator("#totp-secret").inner_text().strip()
    _authenticator(first.platform).enrol(platform_user["username"], secret)
    page.get_by_label("Authenticator code").fill(
        "000000" if totp_code(secret) != "000000" else "111111"
    )
    page.get_by_role("button", name="Confirm and sign in").click()
    page.get_by_role("alert").wait_for(timeout=20_000)  # a wrong code is refused
    page.get_by_label("Authenticator code").fill(totp_code(secret))
    page.get_by_role("button", name="Confirm and sign in").click()
    first.heading("Inbox")

    # nothing of the session outside memory
    stored = page.evaluate(
        "JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage),"
        " document.cookie])"
    )
    assert "eyJ" not in stored and "CognitoIdentityServiceProvider" not in stored
    assert first.context.cookies() == []

    # refreshed before the declared 15-minute validity runs out (the pool answers in real
    # time, so its answer is awaited, not slept for), signed out when idle
    def is_refresh(response: Any) -> bool:
        request = response.request
        return (request.headers.get("x-amz-target") or "").endswith(
            "InitiateAuth"
        ) and "REFRESH_TOKEN" in (request.post_data or "")

    with page.expect_response(is_refresh, timeout=60_000) as refreshed:
        page.clock.run_for("14:30")
    assert refreshed.value.ok, "the session was not refreshed before the declared validity"
    page.get_by_role("heading", level=1, name="Inbox").wait_for()
    page.clock.run_for("01:00")
    first.heading("Sign in")
    page.get_by_text("signed out after a period without activity").wait_for()
    first.capture("20-signed-out-idle")

    # a later sign-in answers the TOTP challenge with the enrolled authenticator
    second = screens()
    second.heading("Sign in")
    second.page.get_by_label("Username").fill(platform_user["username"])
    second.page.get_by_label("Password").fill(platform_user["password"])
    second.page.get_by_role("button", name="Continue").click()
    second.page.get_by_label("Authenticator code").wait_for(timeout=20_000)
    assert second.page.locator("#totp-secret").count() == 0  # enrolled: no new key shown
    second.capture("21-totp-challenge")
    second.page.get_by_label("Authenticator code").fill(totp_code(secret))
    second.page.get_by_role("button", name="Sign in").click()
    second.heading("Inbox")
    second.capture("03-inbox")


def _group_with_expert(screens: Any, platform: dict[str, Any], title: str) -> Any:
    """The lead opens a group for a synthetic patient and summons a cardiologist, who
    joins: (lead screen, expert screen, expert user, patient id, group id)."""
    lead_user = _user(platform, role="doctor", institution="harbour-cardiac-alliance")
    expert_user = _user(platform, role="specialist", specialty="cardiology")
    patient = next(
        p["patient_id"]
        for p in platform["demoPatients"][_stack(platform)]
        if p["institution_id"] == "harbour-cardiac-alliance"
    )
    lead = screens(lead_user)
    lead.go("/groups")
    lead.heading("My groups")
    lead.page.get_by_label("Patient", exact=True).fill(patient)
    lead.page.get_by_label("Group", exact=True).fill(title)
    lead.page.get_by_role("button", name="Open group").click()
    lead.heading(title)
    group_id = lead.page.url.rsplit("/", 1)[1]
    lead.page.get_by_label("Specialties").fill("cardiology")
    lead.page.get_by_role("button", name="Summon", exact=True).click()
    lead.page.get_by_text("1 expert(s) summoned.").wait_for()
    lead.page.get_by_role("cell", name="Invited", exact=True).wait_for()

    expert = screens(expert_user)
    expert.go(f"/groups/{group_id}")
    expert.page.get_by_role("button", name="Accept the invitation and join").click()
    expert.page.get_by_text("You joined the group.").wait_for()
    expert.heading(title)
    return lead, expert, expert_user, patient, group_id


def test_groups_summon_accept_and_revocation_on_the_next_action(
    screens: Any, web_platform: dict[str, Any]
) -> None:
    lead, expert, expert_user, _, group_id = _group_with_expert(
        screens, web_platform, "Cardiac case conference"
    )
    lead.go("/groups")
    lead.go(f"/groups/{group_id}")
    lead.page.get_by_role("cell", name="Active", exact=True).nth(1).wait_for()
    lead.capture("04-group")

    # the lead removes the expert; the expert's very next action is refused
    lead.page.get_by_role("button", name=f"Remove {expert_user['mchk_reg_no']}").click()
    lead.page.get_by_text(f"{expert_user['mchk_reg_no']} removed from the group").wait_for()
    expert.go("/groups")
    expert.go(f"/groups/{group_id}")
    expert.page.get_by_role("alert").filter(has_text="Access denied").wait_for()
    expert.capture("05-revoked")

    lead.go("/groups")
    lead.heading("My groups")
    lead.page.get_by_role("link", name="Cardiac case conference").first.wait_for()
    lead.capture("06-groups")


def test_records_sealed_in_the_browser_opened_in_another_and_revoked(
    screens: Any, web_platform: dict[str, Any]
) -> None:
    """A 50 MiB file sealed in the lead's browser, straight to S3; opened and verified in
    the expert's browser, byte for byte; refused on the expert's next action once removed."""
    lead, expert, expert_user, patient, group_id = _group_with_expert(
        screens, web_platform, "Imaging review"
    )
    content = os.urandom(50 * 1024 * 1024)
    digest = hashlib.sha256(content).hexdigest()
    lead.go(f"/patients/{patient}")
    lead.heading(re.compile("Records of patient"))
    # from a file: Playwright hands the page a buffer of at most 50 MB (not MiB)
    scan = ARTEFACTS_TMP / "ct-scan.dcm"
    scan.parent.mkdir(parents=True, exist_ok=True)
    scan.write_bytes(content)
    lead.page.get_by_label("File").set_input_files(scan)
    lead.page.get_by_label("Title").fill("CT chest, synthetic")
    lead.page.get_by_role("button", name="Seal and upload").click()
    lead.page.get_by_text("Uploaded and committed").wait_for(timeout=300_000)
    lead.capture("07-patient-records")
    lead.page.get_by_role("link", name="CT chest, synthetic").click()
    lead.heading("CT chest, synthetic")
    lead.page.get_by_label("Share into group").select_option(group_id)
    lead.page.get_by_role("button", name="Share", exact=True).click()
    lead.page.get_by_text("Shared.").wait_for()
    record_url = lead.page.url
    expert.page.goto(record_url)
    expert.heading("CT chest, synthetic")
    expert.page.get_by_role("button", name="Open version 1").click()
    expert.page.locator("#opened-sha256").wait_for(timeout=300_000)
    assert expert.page.locator("#opened-sha256").inner_text() == digest
    expert.capture("08-record-opened")

    # both ways with the Python doctor's client (hubclient): the record sealed in the
    # browser opens with Python; a record sealed by Python opens in the browser
    record_id = record_url.rsplit("/", 1)[1]
    expert_py = _python_client(web_platform, expert_user)
    # (50 MiB: the client's own download, shards straight from S3, opened on this side)
    opened = ARTEFACTS_TMP / "opened-by-python.dcm"
    expert_py.download(record_id, opened)
    assert hashlib.sha256(opened.read_bytes()).hexdigest() == digest
    lead_py = _python_client(
        web_platform, _user(web_platform, role="doctor", institution="harbour-cardiac-alliance")
    )
    from_python = os.urandom(3 * 1024 * 1024 + 7)
    source = ARTEFACTS_TMP / "from-python.dcm"
    source.write_bytes(from_python)
    made = lead_py.upload(patient, source, "application/dicom", title="From Python")
    lead_py.share(made["record_id"], group_id)
    expert.go(f"/records/{made['record_id']}")
    expert.heading("From Python")
    expert.page.get_by_role("button", name="Open version 1").click()
    expert.page.locator("#opened-sha256").wait_for(timeout=120_000)
    assert (
        expert.page.locator("#opened-sha256").inner_text()
        == hashlib.sha256(from_python).hexdigest()
    )

    lead.go(f"/groups/{group_id}")
    lead.page.get_by_role("button", name=f"Remove {expert_user['mchk_reg_no']}").click()
    lead.page.get_by_text(f"{expert_user['mchk_reg_no']} removed from the group").wait_for()
    # the expert's next action, opening the record, is refused in the browser and in Python
    expert.page.goto(record_url)
    expert.page.get_by_role("alert").filter(has_text="Access denied").wait_for()
    assert expert.page.get_by_role("button", name="Open version 1").count() == 0
    from hubclient.errors import ApiError

    with pytest.raises(ApiError) as refused:
        expert_py.download(record_id, ARTEFACTS_TMP / "refused.dcm")
    assert refused.value.status == 403
    assert not (ARTEFACTS_TMP / "refused.dcm").exists()


ARTEFACTS_TMP = ROOT / "build" / "browser-artefacts"


def _python_client(platform: dict[str, Any], user: dict[str, Any]) -> Any:
    """The Python doctor's client (hubclient, issue 17), signed in as ``user``."""
    from hubclient.sdk import HubClient
    from infra.local_platform import demo_bearer

    token = demo_bearer(platform, _stack(platform), _authenticator(platform))(user)["Authorization"]

    class Tokens:
        def access_token(self) -> str:
            return token.removeprefix("Bearer ")

    home = ARTEFACTS_TMP / f"hubclient-{user['username']}"
    home.mkdir(parents=True, exist_ok=True)
    return HubClient.connect(platform["apiBaseUrl"], Tokens(), home=home)


def test_a_referral_sent_accepted_and_its_letter(
    screens: Any, web_platform: dict[str, Any]
) -> None:
    referrer_user = _user(web_platform, role="doctor", institution="harbour-cardiac-alliance")
    receiver_user = _user(web_platform, role="specialist", specialty="neurology")
    patient = next(
        p["patient_id"]
        for p in web_platform["demoPatients"][_stack(web_platform)]
        if p["institution_id"] == "harbour-cardiac-alliance"
    )
    referrer = screens(referrer_user)
    referrer.go("/referrals/new")
    referrer.heading("New referral")
    page = referrer.page
    page.get_by_label("Patient", exact=True).fill(patient)
    page.get_by_label("Receiving institution").fill(receiver_user["institution"])
    page.get_by_label("Specialty").fill("neurology")
    page.get_by_label("Urgency").select_option("urgent")
    page.get_by_label("Clinical question").fill("Synthetic: new focal weakness; please assess.")
    referrer.capture("09-new-referral")
    page.get_by_role("button", name="Send referral").click()
    referrer.heading("Referral")
    page.locator("#referral-status").filter(has_text="Requested").wait_for()
    referral_url = page.url

    receiver = screens(receiver_user)
    receiver.go("/inbox")
    receiver.heading("Inbox")
    link = receiver.page.get_by_role("link", name=f"From {referrer_user['institution']}")
    link.first.wait_for()
    receiver.capture("10-inbox-referral")
    link.first.click()
    receiver.heading("Referral")
    receiver.page.get_by_text("Synthetic: new focal weakness").wait_for()
    receiver.capture("11-referral")
    receiver.page.get_by_role("button", name="Accept referral").click()
    outcome = receiver.page.locator("#referral-status", has_text="Accepted").or_(
        receiver.page.get_by_role("alert")
    )
    outcome.first.wait_for()
    assert receiver.page.get_by_role("alert").count() == 0, receiver.page.get_by_role(
        "alert"
    ).all_inner_texts()
    receiver.page.get_by_role("button", name="Prepare the letter (PDF)").click()
    with receiver.page.expect_download() as download:
        receiver.page.get_by_role("link", name="Open the referral letter").click()
    letter = Path(download.value.path()).read_bytes()
    assert letter.startswith(b"%PDF")

    referrer.go("/referrals")  # (a reload would sign out: the tokens live in memory only)
    referrer.heading("Referrals")
    referrer.page.get_by_role("link", name=f"To {receiver_user['institution']}").first.wait_for()
    referrer.capture("19-referrals")
    referrer.page.goto(referral_url)
    referrer.page.locator("#referral-status").filter(has_text="Accepted").wait_for()


def _load_tamper() -> Any:
    spec = importlib.util.spec_from_file_location(
        "ledger_tamper", ROOT / "scripts" / "ledger_tamper.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_auditor_checks_inclusion_in_the_browser_and_a_tampered_entry_fails(
    screens: Any, web_platform: dict[str, Any]
) -> None:
    import boto3

    # something to audit: a doctor signs in and reads their profile
    screens(_user(web_platform, role="doctor", institution="lion-rock-oncology")).heading("Inbox")
    auditor = screens(_user(web_platform, role="auditor"))
    auditor.heading("Audit log")
    page = auditor.page
    loading = page.get_by_text("Loading…").first
    deadline = time.monotonic() + 60
    rows = page.get_by_role("button", name=re.compile(r"^Check inclusion \d+$"))
    # each search's answer is awaited before the next (a new search drops the one in
    # flight, and on a loaded machine a listing can take longer than a fixed pause)
    loading.wait_for(state="hidden", timeout=60_000)
    while rows.count() == 0 and time.monotonic() < deadline:
        page.get_by_role("button", name="Search").click()  # heads are signed within 2 s
        loading.wait_for(state="hidden", timeout=60_000)
    assert rows.count() > 0, "no audit entries covered by a signed head"
    target = rows.last
    index = int((target.get_attribute("aria-label") or target.inner_text()).split()[-1])
    target.click()
    page.get_by_role("button", name=f"Verify entry {index} in this browser").click()
    result = page.locator("#verify-result")
    result.wait_for()
    assert result.get_attribute("data-outcome") == "verified", result.inner_text()
    assert "ECDSA P-256" in result.inner_text()
    auditor.capture("12-audit-verified")

    # an insider rewrites the entry in the ledger table, and every copy the query index
    # keeps of it, as one hiding an entry from the audit log would
    outputs = web_platform["stacks"][_stack(web_platform)]["outputs"]
    dynamodb = boto3.client(
        "dynamodb", region_name="ap-east-1", endpoint_url=web_platform["emulatorEndpoint"]
    )
    table = outputs["tableNames"]["ledger"]
    _, after = _load_tamper().tamper_entry(dynamodb, table, index)
    copies = 0
    for page_of_items in dynamodb.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="#s = :s AND attribute_exists(#e)",
        ExpressionAttributeNames={"#s": "seq", "#e": "entry"},
        ExpressionAttributeValues={":s": {"N": str(index)}},
    ):
        for item in page_of_items["Items"]:
            dynamodb.update_item(
                TableName=table,
                Key={"pk": item["pk"], "sk": item["sk"]},
                UpdateExpression="SET #e = :e",
                ExpressionAttributeNames={"#e": "entry"},
                ExpressionAttributeValues={":e": {"B": after}},
            )
            copies += 1
    assert copies >= 1

    page.get_by_role("button", name="Search").click()  # the auditor reads the entries again
    page.get_by_role("button", name=f"Check inclusion {index}").click()
    page.get_by_role("button", name=f"Verify entry {index} in this browser").click()
    result = page.locator("#verify-result")
    result.wait_for()
    assert result.get_attribute("data-outcome") == "failed", result.inner_text()
    assert "changed after it was logged" in result.inner_text()
    auditor.capture("13-audit-tampered")


def test_institution_admin_metrics(screens: Any, web_platform: dict[str, Any]) -> None:
    admin = screens(_user(web_platform, role="institution_admin"))
    admin.heading(re.compile("Institution"))
    admin.go("/metrics")
    admin.heading("Pilot metrics")
    admin.page.get_by_text("ledger entries read").wait_for()
    admin.capture("15-metrics")


@pytest.fixture
def phase3_platform(moto_endpoint: str, browser_prerequisites: None) -> Iterator[dict[str, Any]]:
    """Phase 3 (private practice), where self-registration is open: the approvals need it.
    Its own pool and tables on the same moto, for this walk-through only."""
    from infra.standalone_platform import standalone_platform

    with standalone_platform(moto_endpoint, "phase3-private-practice", web=True) as (doc, _):
        yield doc


# A practitioner the Medical Council register lists (synthetic; six digits, so no seeded
# number), who applies through self-registration.
APPLICANT_REG_NO = "ZZ400815"
APPLICANT_NAME = "Chan Siu Ming (synthetic)"


def _api(
    platform: dict[str, Any], method: str, path: str, token: str, body: Any = None
) -> tuple[int, Any]:
    import urllib.error

    request = urllib.request.Request(
        f"{platform['apiBaseUrl']}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


def _applicant(platform: dict[str, Any]) -> str:
    """A native account signed up and enrolled nowhere, and the register entry it will
    claim; returns its access token (SRP and TOTP, as the web client signs in)."""
    import boto3

    from app import local

    outputs = platform["stacks"][_stack(platform)]["outputs"]
    endpoint = platform["emulatorEndpoint"]
    dynamodb = boto3.client("dynamodb", region_name="ap-east-1", endpoint_url=endpoint)
    dynamodb.put_item(
        TableName=outputs["tableNames"]["register"],
        Item={
            "reg_no": {"S": APPLICANT_REG_NO},
            "name_en": {"S": APPLICANT_NAME},
            "name_zh": {"S": "陳小明"},
            "address": {"S": "1 Example Road, Hong Kong"},
            "qualifications": {"L": [{"S": "MB BS (Synthetic U)"}]},
            "status": {"S": "active"},
            "imported_at": {"S": "2026-01-01T00:00:00Z"},
        },
    )
    cognito = boto3.client("cognito-idp", region_name="ap-east-1", endpoint_url=endpoint)
    username, password = "applicant-zz400815", "Synthetic-Passw0rd-2026!"
    local.create_user(cognito, outputs["userPoolId"], username, password, groups=())
    tokens = local.login(
        cognito,
        outputs["userPoolId"],
        outputs["userPoolClientIds"][0],
        username,
        password,
        authenticator=_authenticator(platform),
    )
    return str(tokens["AccessToken"])


def _affiliation_row(page: Any, reg_no: str) -> Any:
    """The row of ``reg_no`` in the affiliations table (the registration queue's table
    lists register numbers too, with the register's own "Active")."""
    table = page.get_by_role(
        "table", name="Doctors affiliated with this institution, and their roles"
    )
    return table.get_by_role("row").filter(has_text=reg_no)


def test_institution_admin_affiliations_and_approvals(
    screens: Any, phase3_platform: dict[str, Any]
) -> None:
    """The identity routes (issue 11) from the admin's screen: a removal refuses the
    doctor's next action and a new affiliation restores it; a self-registration waits,
    with no access, until the clinic's admin approves it in the browser."""
    platform = phase3_platform
    clinic = "peak-family-clinic"
    doctor_user = _user(platform, role="doctor", institution=clinic)
    reg = doctor_user["mchk_reg_no"]
    admin = screens(
        _user(platform, role="institution_admin", institution=clinic), platform=platform
    )
    admin.heading(f"Institution: {clinic}")
    page = admin.page
    page.get_by_role("heading", name="Affiliations").wait_for()
    row = _affiliation_row(page, reg)
    row.get_by_role("cell", name="Active", exact=True).wait_for()
    # an institution admin grants clinical roles only: the admin role is not offered
    assert page.get_by_role("checkbox", name="Institution admin").count() == 0
    admin.capture("14-institution")

    doctor = screens(doctor_user, platform=platform)
    doctor.heading("Inbox")
    page.get_by_role("button", name=f"Remove {reg}").click()
    page.get_by_text(f"{reg} removed.").wait_for()
    row.get_by_role("cell", name="Removed", exact=True).wait_for()
    doctor.go("/referrals")
    doctor.page.get_by_role("alert").filter(
        has_text="affiliation with this institution was removed"
    ).first.wait_for()
    doctor.capture("16-affiliation-removed")

    page.get_by_label("Registration no.").fill(reg.lower())
    page.get_by_role("button", name="Save affiliation").click()
    page.get_by_text(f"{reg} saved.").wait_for()
    row.get_by_role("cell", name="Active", exact=True).wait_for()
    doctor.go("/inbox")
    doctor.go("/referrals")
    doctor.heading("Referrals")
    # both boxes loaded (empty) and nothing refused
    doctor.page.get_by_text("No referrals.").nth(1).wait_for()
    assert doctor.page.get_by_role("alert").count() == 0, doctor.page.get_by_role(
        "alert"
    ).all_inner_texts()

    # self-registration: pending, no access at all, until approved here
    token = _applicant(platform)
    status, body = _api(
        platform,
        "POST",
        "/registrations",
        token,
        {"reg_no": APPLICANT_REG_NO, "name": APPLICANT_NAME, "institution": clinic},
    )
    assert status == 201 and body["status"] == "pending", body
    status, body = _api(platform, "GET", "/me", token)
    assert (status, body["error"]["code"]) == (403, "registration_pending"), body
    admin.go("/inbox")  # (back again: the screen loads the queue afresh)
    admin.go("/institution")
    pending = page.get_by_role("row").filter(has_text=APPLICANT_REG_NO)
    pending.get_by_role("cell", name=APPLICANT_NAME, exact=False).wait_for()
    admin.capture("17-registration-pending")
    page.get_by_role("button", name=f"Approve {APPLICANT_REG_NO}").click()
    page.get_by_text(f"{APPLICANT_REG_NO} approved.").wait_for()
    # The queue and the affiliations reload side by side: until the queue's reload lands,
    # its row (the register's status, also "Active") stands beside the new affiliation's.
    page.get_by_text("No registrations waiting.").wait_for()
    _affiliation_row(page, APPLICANT_REG_NO).get_by_role(
        "cell", name="Active", exact=True
    ).wait_for()
    status, body = _api(platform, "GET", "/me", token)
    assert status == 200, body
    assert (body["reg_no"], body["institution"], body["roles"]) == (
        APPLICANT_REG_NO,
        clinic,
        ["doctor"],
    )

    # a platform admin keeps any institution's affiliations, and may make an admin
    operator = screens(_user(platform, role="platform_admin"), platform=platform)
    operator.heading(re.compile("^Institution: "))
    operator.page.get_by_label("Institution", exact=True).select_option(clinic)
    operator.heading(f"Institution: {clinic}")
    _affiliation_row(operator.page, APPLICANT_REG_NO).get_by_role(
        "cell", name="Active", exact=True
    ).wait_for()
    operator.page.get_by_role("checkbox", name="Institution admin").wait_for()
    operator.capture("18-platform-admin")
