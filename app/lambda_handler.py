"""Lambda entry point: the FastAPI app served through Mangum (API Gateway REST proxy events)."""

from __future__ import annotations

from mangum import Mangum

from app.main import create_app

handler = Mangum(create_app(), lifespan="off")
