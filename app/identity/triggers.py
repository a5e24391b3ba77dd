"""Cognito Lambda triggers: pre sign-up and pre token generation (V2 events).

- ``pre_sign_up`` refuses a sign-up (native or federated) unless the Medical Council
  number is active on the register and the institution is admitted in this phase. It
  never auto-confirms or auto-verifies anything.
- ``pre_token_generation`` re-checks the registration at every token issue (a suspended
  doctor gets no new tokens) and adds ``institution_id``, ``mchk_reg_no`` and
  ``hub_roles`` claims to the id and access tokens.

Both use :func:`app.identity.registration.check_registration`, the same check the
service applies on every request. Configuration comes from the function environment:
``HUB_REGISTER_TABLE`` and ``HUB_ADMITTED_INSTITUTIONS`` (a JSON list).
"""

from __future__ import annotations

import json
import logging
import os
from functools import lru_cache
from typing import Any

from app.identity.registration import (
    DynamoRegister,
    RegisterLookup,
    RegistrationRefused,
    check_registration,
)

log = logging.getLogger(__name__)

ROLE_GROUPS = ("doctor", "specialist", "institution_admin", "auditor", "platform_admin")


@lru_cache(maxsize=1)
def _default_register() -> RegisterLookup:
    import boto3

    return DynamoRegister(boto3.resource("dynamodb").Table(os.environ["HUB_REGISTER_TABLE"]))


def _admitted() -> list[str]:
    admitted = json.loads(os.environ.get("HUB_ADMITTED_INSTITUTIONS", "[]"))
    return [str(i) for i in admitted]


def _attributes(event: dict[str, Any]) -> dict[str, Any]:
    attributes = event.get("request", {}).get("userAttributes", {})
    return attributes if isinstance(attributes, dict) else {}


def pre_sign_up(
    event: dict[str, Any], _context: object = None, *, register: RegisterLookup | None = None
) -> dict[str, Any]:
    attributes = _attributes(event)
    try:
        check_registration(
            attributes.get("custom:mchk_reg_no"),
            attributes.get("custom:institution_id"),
            register=register or _default_register(),
            admitted_institutions=_admitted(),
        )
    except RegistrationRefused as refused:
        # Cognito turns the exception into a refused sign-up; the reason is a code only.
        log.info("pre_sign_up refused: %s", refused.reason)
        raise
    response = event.setdefault("response", {})
    response["autoConfirmUser"] = False
    response["autoVerifyEmail"] = False
    response["autoVerifyPhone"] = False
    return event


def pre_token_generation(
    event: dict[str, Any], _context: object = None, *, register: RegisterLookup | None = None
) -> dict[str, Any]:
    attributes = _attributes(event)
    practitioner = check_registration(
        attributes.get("custom:mchk_reg_no"),
        attributes.get("custom:institution_id"),
        register=register or _default_register(),
        admitted_institutions=_admitted(),
    )
    groups = event.get("request", {}).get("groupConfiguration", {}).get("groupsToOverride", [])
    roles = sorted(g for g in groups if g in ROLE_GROUPS)
    claims = {
        "institution_id": attributes["custom:institution_id"],
        "mchk_reg_no": practitioner.reg_no,
        "hub_roles": " ".join(roles),
    }
    event.setdefault("response", {})["claimsAndScopeOverrideDetails"] = {
        "idTokenGeneration": {"claimsToAddOrOverride": claims},
        "accessTokenGeneration": {"claimsToAddOrOverride": claims},
    }
    return event
