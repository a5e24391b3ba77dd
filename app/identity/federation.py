"""What a federated identity provider must release, and where the user pool keeps it.

One table says, per protocol, which claim of the provider fills which pool attribute.
The identity component (``infra/components/identity.py``) declares each provider's
attribute mapping from it, the verify check reads each live provider against it, and
the service and the triggers read the pool attributes it names
(:data:`ASSERTED_ATTRIBUTES`). A provider's mapping asks only for what its
:class:`~app.identity.affiliations.ProviderMapping` needs: a registration number always, a
hospital code when the provider covers many hospitals, the group claim when roles come
from it.

The pool attributes are mutable custom attributes of their own (``idp_*``): Cognito
rewrites mapped attributes at every federated sign-in, so they must be mutable, and the
app client that writes them must be one whose tokens cannot call
``UpdateUserAttributes`` (the federated client: hosted UI only, no admin scope).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

Protocol = Literal["SAML", "OIDC"]

# Pool attribute -> the key the resolution reads (app.identity.affiliations.SignIn).
ASSERTED_ATTRIBUTES: dict[str, str] = {
    "custom:idp_reg_no": "reg_no",
    "custom:hospital_code": "hospital_code",
    "custom:idp_groups": "groups",
}
_POOL_ATTRIBUTE = {key: name for name, key in ASSERTED_ATTRIBUTES.items()}

# Pool attributes that grant something (a number, an institution, a specialty, a role):
# no app client whose tokens can call UpdateUserAttributes may write them, and no native
# sign-up may set them. The first three are legacy attributes the service no longer
# reads (a pool's schema cannot shrink); the others are what providers assert.
GRANTING_ATTRIBUTES = frozenset(
    {"custom:mchk_reg_no", "custom:institution_id", "custom:specialty", *ASSERTED_ATTRIBUTES}
)
# What users may keep for themselves: contact details, never a grant.
USER_WRITABLE_ATTRIBUTES = ("email", "name", "given_name", "family_name", "phone_number")
USER_READABLE_ATTRIBUTES = (*USER_WRITABLE_ATTRIBUTES, "email_verified", "phone_number_verified")

# Per protocol: pool attribute -> the provider's claim (SAML attribute name, OIDC claim).
PROVIDER_CLAIMS: dict[str, dict[str, str]] = {
    "SAML": {
        "email": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "custom:idp_reg_no": "urn:hk:mchk:reg_no",
        "custom:hospital_code": "urn:hk:ha:hospital_code",
        "custom:idp_groups": "http://schemas.xmlsoap.org/claims/Group",
    },
    "OIDC": {
        "email": "email",
        "custom:idp_reg_no": "mchk_reg_no",
        "custom:hospital_code": "hospital_code",
        "custom:idp_groups": "groups",
    },
}


def needed_attributes(required_claims: Iterable[str]) -> list[str]:
    """The pool attributes a provider must fill for ``required_claims`` (email always)."""
    return ["email", *(_POOL_ATTRIBUTE[c] for c in required_claims)]


def attribute_mapping(protocol: str, required_claims: Iterable[str]) -> dict[str, str]:
    """The identity provider's attribute mapping (pool attribute -> provider claim)."""
    claims = PROVIDER_CLAIMS[protocol]
    return {name: claims[name] for name in needed_attributes(required_claims)}


def map_assertion(
    mapping: Mapping[str, str], assertion: Mapping[str, str | Sequence[str]]
) -> dict[str, str]:
    """The pool attributes Cognito writes from a provider's assertion under ``mapping``:
    a claim the provider did not release leaves its attribute unset; a multi-valued SAML
    attribute is stored as ``[a, b]`` (Cognito's form), an OIDC array as its JSON."""
    out: dict[str, str] = {}
    for pool_attribute, claim in mapping.items():
        if claim not in assertion:
            continue
        value = assertion[claim]
        out[pool_attribute] = value if isinstance(value, str) else "[" + ", ".join(value) + "]"
    return out
