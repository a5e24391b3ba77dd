"""Lambda entry point: the FastAPI app served through Mangum (API Gateway REST proxy events).

Settings come from the function's ``HUB_*`` environment; the app (and its AWS clients)
is built once per execution environment, on first import by the Lambda runtime. The
audit ledger integrates and signs inline before each audited response (no background
thread survives between invocations).
"""

from __future__ import annotations

from mangum import Mangum

from app.main import create_app
from app.settings import Settings

_app = create_app(Settings())
# Lambda freezes the environment between invocations, so the ledger's background
# sequencer could not keep its 2 s promise: audited responses sign their head inline.
_app.state.services.ledger.inline = True
handler = Mangum(_app, lifespan="off")
