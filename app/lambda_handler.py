"""Lambda entry point: the FastAPI app served through Mangum (API Gateway REST proxy events).

Settings come from the function's ``HUB_*`` environment; the app (and its AWS clients)
is built once per execution environment, on first import by the Lambda runtime. The
audit ledger integrates and signs inline before each audited response (no background
thread survives between invocations); see :func:`app.main.lambda_handler_for`.
"""

from __future__ import annotations

from app.main import create_app, lambda_handler_for
from app.settings import Settings

handler = lambda_handler_for(create_app(Settings()))
