"""Cognito Lambda triggers: pre sign-up and pre token generation (V2 events).

- ``pre_sign_up`` never auto-confirms or auto-verifies anything. A native sign-up
  (phase 3 self-registration) must carry no granting attribute: the app client cannot
  write them, and this refuses one that arrives anyway; the applicant proves who they
  are afterwards, through the API (``POST /registrations``), and stays without access
  until an admin approves. A federated sign-up is resolved like any token issue below,
  so a provider, hospital code or doctor the hub does not admit never gets an account.
- ``pre_token_generation`` resolves the account with
  :func:`~app.identity.affiliations.resolve_enrolment` (the ``institutions`` table) and
  re-checks the registration (a suspended doctor gets no new tokens), then adds
  ``institution_id``, ``mchk_reg_no`` and ``hub_roles`` claims to the id and access
  tokens and overrides the token's groups with the hub roles. A refusal raises, so
  Cognito issues no token and the sign-in shows the refusal's sentence.

Both use the same functions the service applies on every request (which never trusts
these claims: it re-derives them). Configuration comes from the function environment:
``HUB_TABLE_REGISTER`` and ``HUB_TABLE_INSTITUTIONS``.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import Any

from app.identity.affiliations import (
    ROLES,
    AffiliationLookup,
    DynamoAffiliations,
    EnrolmentRefused,
    SignIn,
    resolve_enrolment,
)
from app.identity.federation import ASSERTED_ATTRIBUTES, GRANTING_ATTRIBUTES
from app.identity.principal import federated_provider
from app.identity.registration import (
    DynamoRegister,
    RegisterLookup,
    RegistrationRefused,
    check_registration,
)

log = logging.getLogger(__name__)

ROLE_GROUPS = ROLES


@lru_cache(maxsize=1)
def _default_register() -> RegisterLookup:
    import boto3

    return DynamoRegister(boto3.resource("dynamodb").Table(os.environ["HUB_TABLE_REGISTER"]))


@lru_cache(maxsize=1)
def _default_affiliations() -> AffiliationLookup:
    import boto3

    return DynamoAffiliations(boto3.client("dynamodb"), os.environ["HUB_TABLE_INSTITUTIONS"])


def _attributes(event: dict[str, Any]) -> dict[str, Any]:
    attributes = event.get("request", {}).get("userAttributes", {})
    return attributes if isinstance(attributes, dict) else {}


def sign_in_of(event: dict[str, Any]) -> SignIn:
    """The account a trigger event is about, as the pool knows it."""
    attributes = _attributes(event)
    status = attributes.get("cognito:user_status")
    if event.get("triggerSource") == "PreSignUp_ExternalProvider":
        status = "EXTERNAL_PROVIDER"
    provider = federated_provider(attributes, status)
    if provider is None and event.get("triggerSource") == "PreSignUp_ExternalProvider":
        # On first sign-in the user name is "<provider>_<id>" and identities may be absent
        # (provider names hold no "_": infra/stage.py refuses one).
        provider = str(event.get("userName", "")).split("_", 1)[0] or None
    asserted = (
        {
            key: str(attributes[name])
            for name, key in ASSERTED_ATTRIBUTES.items()
            if name in attributes
        }
        if provider
        else {}
    )
    return SignIn(
        str(attributes.get("sub", "")), str(event.get("userName", "")), provider, asserted
    )


def _sign_up_open(lookup: AffiliationLookup) -> bool:
    """Native sign-up is open while the core's stage or a switched-on layer (phase 3's)
    turns self-registration on, read now from the switches (strongly consistent)."""
    if os.environ.get("HUB_SELF_REGISTRATION") == "true":
        return True
    return lookup.switches().self_registration


def pre_sign_up(
    event: dict[str, Any],
    _context: object = None,
    *,
    register: RegisterLookup | None = None,
    affiliations: AffiliationLookup | None = None,
) -> dict[str, Any]:
    if event.get("triggerSource") == "PreSignUp_ExternalProvider":
        sign_in = sign_in_of(event)
        try:
            enrolment = resolve_enrolment(sign_in, affiliations or _default_affiliations())
            check_registration(enrolment.reg_no, register=register or _default_register())
        except (EnrolmentRefused, RegistrationRefused) as refused:
            # Cognito turns the exception into a refused sign-up; the reason is a code only.
            log.info("pre_sign_up refused: %s", refused.reason)
            raise
    else:
        if event.get("triggerSource") == "PreSignUp_SignUp" and not _sign_up_open(
            affiliations or _default_affiliations()
        ):
            # The core pool allows sign-up so that phase 3's layer can open it without
            # changing the pool; until its switch stands, the trigger refuses it here.
            log.info("pre_sign_up refused: self_registration_closed")
            raise EnrolmentRefused("self_registration_closed")
        written = sorted(GRANTING_ATTRIBUTES & set(_attributes(event)))
        if written:
            log.info("pre_sign_up refused: granting_attribute_written")
            raise EnrolmentRefused("granting_attribute_written")
    response = event.setdefault("response", {})
    response["autoConfirmUser"] = False
    response["autoVerifyEmail"] = False
    response["autoVerifyPhone"] = False
    return event


def pre_token_generation(
    event: dict[str, Any],
    _context: object = None,
    *,
    register: RegisterLookup | None = None,
    affiliations: AffiliationLookup | None = None,
) -> dict[str, Any]:
    sign_in = sign_in_of(event)
    try:
        enrolment = resolve_enrolment(sign_in, affiliations or _default_affiliations())
    except EnrolmentRefused as refused:
        log.info("pre_token_generation refused: %s", refused.reason)
        raise
    roles = set(enrolment.roles)
    reg_no = ""
    if enrolment.reg_no or roles & {"doctor", "specialist"}:
        practitioner = check_registration(
            enrolment.reg_no, register=register or _default_register()
        )
        reg_no = practitioner.reg_no
        if "specialist" in roles and practitioner.specialty is None:
            roles.discard("specialist")
    ordered = sorted(roles)
    claims = {
        "institution_id": enrolment.institution.id,
        "mchk_reg_no": reg_no,
        "hub_roles": " ".join(ordered),
    }
    event.setdefault("response", {})["claimsAndScopeOverrideDetails"] = {
        "idTokenGeneration": {"claimsToAddOrOverride": claims},
        "accessTokenGeneration": {"claimsToAddOrOverride": claims},
        # cognito:groups then says what the hub decided, not what the pool's groups say.
        "groupOverrideDetails": {"groupsToOverride": ordered},
    }
    return event
