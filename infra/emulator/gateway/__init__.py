"""The local API gateway: the deployed request path (API Gateway, WAF, Lambda) on loopback.

Built from a stack's deployment record, never from a second description of the API:

- :mod:`.declared` reads the REST API, resources, methods, authorizers, integrations,
  functions, stage throttling and web ACL the record declares;
- :mod:`.authorizer` is the Cognito user pool authorizer (ID token without scopes; with
  scopes an access token carrying one of them; ``401 {"message": "Unauthorized"}``);
- :mod:`.events` builds the REST proxy event (payload 1.0) and reads the proxy response,
  with API Gateway's binary media type and base64 handling;
- :mod:`.limits` holds the 10 MB, 6 MB and 29 s limits and the stage's token bucket;
- :mod:`.waf` evaluates the declared web ACL;
- :mod:`.server` is :class:`LocalGateway`, the HTTP server that runs all of it in front of
  a Lambda handler in this process;
- :mod:`.local` serves a deployed stack through it (``hub local up``);
- :mod:`.preview` records the program's declaration without deploying (tests, benchmark).

What it cannot emulate is listed in ``infra/emulator/gaps.py`` with the covering checks.
"""

from infra.emulator.gateway.declared import DeclaredApi, UnsupportedApi
from infra.emulator.gateway.events import GatewayRequest, GatewayResponse
from infra.emulator.gateway.preview import record_from_program
from infra.emulator.gateway.server import LocalGateway

__all__ = [
    "DeclaredApi",
    "GatewayRequest",
    "GatewayResponse",
    "LocalGateway",
    "UnsupportedApi",
    "record_from_program",
]
