"""Assembles the sharing service's FastAPI app.

Only ``/health`` exists so far; the identity, groups, records and ledger domains add
their routers here (each route except ``/health`` will require a bearer token).
"""

from __future__ import annotations

from fastapi import FastAPI

from app import __doc__ as _app_doc


def create_app() -> FastAPI:
    app = FastAPI(title="Health Collaboration Hub", description=_app_doc or "", version="0.1.0")

    @app.get("/health", tags=["operations"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
