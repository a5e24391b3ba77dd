"""Lambda entry point of the application service: the homeserver's private path.

The homeserver (Synapse on ECS, in the VPC) pushes transactions to an internal
Application Load Balancer that invokes this function (ALB events, through Mangum). It
serves only the application service API (:func:`app.main.create_appservice_app`),
authenticated by the homeserver's token; nothing on the internet reaches it.
"""

from __future__ import annotations

from app.main import create_appservice_app, lambda_handler_for
from app.settings import Settings

handler = lambda_handler_for(create_appservice_app(Settings()))
