"""Assembles the sharing service's FastAPI app from its settings.

``create_app(settings)`` builds the services (:mod:`app.dependencies`), registers each
for the routes that declare it (:mod:`app.wiring`), mounts every domain's router, installs
the central error handlers and publishes the OpenAPI document at ``/openapi.json``.
``lambda_handler_for(app)`` adapts it to API Gateway's Lambda proxy events (Mangum), as
the deployed function and the local gateway both run it.
``/health`` is the only route without a bearer token. Every other route depends on
:data:`app.access.auth.CurrentPrincipal` (a Cognito token), except the homeserver's
(:data:`app.messaging.router.router`: the Matrix application service API), which takes
the homeserver's own token: the authorization matrix test holds every route to one of
the two. ``create_appservice_app`` serves the homeserver's routes alone, for the private
path the homeserver reaches them on (in AWS an internal load balancer in the VPC, in
front of ``app.appservice_handler``; the public API's Cognito authorizer refuses the
homeserver's token). Services (AWS clients included) are built when the app is
created, not at import, and can be passed in by tests.

The API document (``/openapi.json``) lists every status each operation answers, with the
service's error body and codes (:func:`app.openapi.document_api`, applied here once every
router is included). ``/docs`` (Swagger UI) and ``/redoc`` load their assets from this
package (fastapi-offline's static files under ``/docs/assets``), never from a CDN, so
they work on a closed network. The document and its pages are public on the app; behind
API Gateway in AWS the Cognito authorizer guards them like every route but ``/health``
(docs/api.md says why).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from app import __doc__ as _app_doc
from app.access.auth import Authentication
from app.access.gate import AccessGate
from app.access.router import router as access_router
from app.breakglass.router import router as breakglass_router
from app.breakglass.service import BreakGlassService
from app.dependencies import Services, build_services
from app.errors import ServiceUnavailable, install_error_handlers
from app.groups.router import invitations_router
from app.groups.router import router as groups_router
from app.groups.service import GroupService
from app.institutions.router import router as institutions_router
from app.institutions.service import InstitutionService
from app.intake.auth import IntakeAuthentication
from app.intake.router import router as intake_router
from app.intake.service import IntakeService
from app.ledger.receipts import AuditReceiptMiddleware
from app.ledger.router import LEDGER_BUSY, install_ledger_error_handlers
from app.ledger.router import router as ledger_router
from app.ledger.service import Ledger
from app.messaging.audit import RoomLedger
from app.messaging.router import router as appservice_router
from app.messaging.router import session_router as messaging_router
from app.messaging.service import RoomAuthority
from app.messaging.sessions import MessagingSessions
from app.metrics.router import router as metrics_router
from app.metrics.service import MetricsService
from app.notifications.router import router as notifications_router
from app.notifications.service import NotificationService
from app.openapi import document_api, ok_example
from app.patient_consent.router import router as patient_consent_router
from app.patient_consent.service import ConsentService
from app.patient_index.router import router as patient_index_router
from app.patient_index.service import PatientIndexService
from app.records.router import router as records_router
from app.records.service import RecordService
from app.referrals.router import router as referrals_router
from app.referrals.service import ReferralService
from app.settings import Settings
from app.wiring import provide

# Responses Mangum returns as text; anything else goes back base64-encoded and API Gateway
# turns it into bytes only for clients whose Accept matches the API's binary media types.
# FHIR JSON is text: without it here, a FHIR record would come back as base64.
LAMBDA_TEXT_MIME_TYPES = (*DEFAULT_TEXT_MIME_TYPES, "application/fhir+json")

PUBLIC_PATHS = frozenset(
    {"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/docs/assets"}
)
DOCS_ASSETS = "/docs/assets"
# Swagger UI would fetch a validator badge from swagger.io; nothing may leave the page.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None, "tryItOutEnabled": False}


def docs_assets_directory() -> str:
    """Swagger UI's and ReDoc's files, shipped in the fastapi-offline package."""
    import fastapi_offline

    return str(Path(fastapi_offline.__file__).parent / "static")


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    settings = settings or Settings()
    built = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The ledger's sequencer signs tree heads in the background while the app runs.
        built.ledger.start()
        try:
            yield
        finally:
            built.ledger.stop()

    app = FastAPI(
        title="Health Collaboration Hub",
        description=_app_doc or "",
        version="0.1.0",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = built
    _provide_messaging(app, built)
    provide(app, NotificationService, built.notifications)
    provide(app, Settings, built.settings)
    provide(app, Authentication, built.authentication)
    provide(app, AccessGate, built.gate)
    provide(app, BreakGlassService, built.break_glass)
    provide(app, GroupService, built.groups)
    provide(app, Ledger, built.ledger)
    provide(app, InstitutionService, built.institutions)
    provide(app, PatientIndexService, built.patients)
    provide(app, ConsentService, built.consents)
    provide(app, IntakeAuthentication, built.intake_authentication)
    if built.intake is not None:
        provide(app, IntakeService, built.intake)
    if built.records is not None:
        provide(app, RecordService, built.records)
    if built.metrics is not None:
        provide(app, MetricsService, built.metrics)
    if built.referrals is not None:
        provide(app, ReferralService, built.referrals)
    # Every response that recorded an audited action carries its ledger receipt.
    app.add_middleware(AuditReceiptMiddleware, latest_head=built.ledger.response_head)
    install_error_handlers(app)
    install_ledger_error_handlers(app)

    @app.get("/health", tags=["operations"], responses=ok_example({"status": "ok"}))
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(access_router)
    app.include_router(breakglass_router)
    app.include_router(groups_router)
    app.include_router(institutions_router)
    app.include_router(invitations_router)
    app.include_router(ledger_router)
    app.include_router(records_router)
    app.include_router(referrals_router)
    app.include_router(metrics_router)
    app.include_router(patient_index_router)
    app.include_router(patient_consent_router)
    app.include_router(intake_router)
    app.include_router(messaging_router)
    app.include_router(notifications_router)
    app.include_router(appservice_router)
    document_api(app, audited=(LEDGER_BUSY, ServiceUnavailable))
    _install_docs(app)
    return app


def _provide_messaging(app: FastAPI, built: Services) -> None:
    if built.rooms is not None:
        provide(app, RoomAuthority, built.rooms)
    if built.room_ledger is not None:
        provide(app, RoomLedger, built.room_ledger)
    if built.messaging is not None:
        provide(app, MessagingSessions, built.messaging)


def create_appservice_app(
    settings: Settings | None = None, *, services: Services | None = None
) -> FastAPI:
    """The homeserver's routes alone (the application service API), for its private path.

    No Cognito: every route here checks the homeserver's token. Its ledger entries (sends,
    membership, uploads) carry receipts like any other response, and a ledger that stays
    busy answers 503 ``ledger_busy`` as on the service app (the homeserver retries). Not
    published (no ``/openapi.json``), but documented the same way, so the statuses these
    routes answer here are the ones the service app's document lists.
    """
    settings = settings or Settings()
    built = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        built.ledger.start()
        try:
            yield
        finally:
            built.ledger.stop()

    app = FastAPI(
        title="Health Collaboration Hub application service",
        version="0.1.0",
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.services = built
    _provide_messaging(app, built)
    app.add_middleware(AuditReceiptMiddleware, latest_head=built.ledger.response_head)
    install_error_handlers(app)
    install_ledger_error_handlers(app)

    @app.get("/health", tags=["operations"], responses=ok_example({"status": "ok"}))
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(appservice_router)
    document_api(app, audited=(LEDGER_BUSY, ServiceUnavailable))
    return app


def _install_docs(app: FastAPI) -> None:
    """``/docs`` and ``/redoc`` with their assets served from the package (offline)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=docs_assets_directory()), name="docs-assets")

    def root(request: Request) -> str:
        return str(request.scope.get("root_path") or "")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        base = root(request)
        return get_swagger_ui_html(
            openapi_url=f"{base}{app.openapi_url}",
            title=f"{app.title}: API",
            oauth2_redirect_url=f"{base}/docs/oauth2-redirect",
            swagger_js_url=f"{base}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{base}{DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return get_redoc_html(
            openapi_url=f"{base}{app.openapi_url}",
            title=f"{app.title}: API",
            redoc_js_url=f"{base}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{base}{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )


def lambda_handler_for(app: FastAPI, *, sign_inline: bool = True) -> Mangum:
    """The Lambda entry point for ``app``: API Gateway REST proxy events through Mangum.

    Lambda freezes the execution environment between invocations, so the ledger's
    background sequencer could not keep its 2 s promise: audited responses sign their
    tree head inline (``sign_inline``; tests that integrate on demand turn it off), and
    no lifespan (no background thread) runs.
    """
    if sign_inline:
        app.state.services.ledger.inline = True
    return Mangum(app, lifespan="off", text_mime_types=list(LAMBDA_TEXT_MIME_TYPES))
