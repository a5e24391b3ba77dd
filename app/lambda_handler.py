"""Lambda entry point: the FastAPI app served through Mangum (API Gateway REST proxy events).

Settings come from the function's ``HUB_*`` environment; the app (and its AWS clients)
is built once per execution environment, on first import by the Lambda runtime.
"""

from __future__ import annotations

from mangum import Mangum

from app.main import create_app
from app.settings import Settings

handler = Mangum(create_app(Settings()), lifespan="off")
