"""The fixed baseline post-deploy verification holds every stack to.

Verification keeps its own copy of what the program declares (key specs, role groups,
registration attributes, the password policy...) rather than importing the program's
constants: a loosened constant in the program must not loosen the check too.
``tests/infra/verify/test_verify_baseline.py`` catches drift between the two before a
deploy. What varies per stack (phase, audit retention, federated providers, WAF, API
throttling) comes from the stage file instead (``infra.verify.expectations``).
"""

from __future__ import annotations

# Key label -> (key spec, key usage), as the program declares them.
KEY_SPECS: dict[str, tuple[str, str]] = {
    "records": ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
    "audit": ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
    "signing": ("ECC_NIST_P256", "SIGN_VERIFY"),
    "messaging": ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
}
# Tables whose items are audit data use the audit key; all others the records key.
AUDIT_KEY_TABLES = frozenset({"ledger"})

SSE_S3_REASON = (
    "S3 server access logging cannot deliver to a bucket whose default "
    "encryption is SSE-KMS, so the access-log bucket uses SSE-S3"
)

ROLE_GROUPS = ("doctor", "specialist", "institution_admin", "auditor", "platform_admin")
# custom attribute -> mutable? (the registration number is fixed once verified)
CUSTOM_ATTRIBUTES: dict[str, bool] = {
    "mchk_reg_no": False,
    "institution_id": True,
    "specialty": True,
    # what identity providers assert, rewritten at each federated sign-in
    "idp_reg_no": True,
    "hospital_code": True,
    "idp_groups": True,
}
PASSWORD_MIN_LENGTH = 14
TEMPORARY_PASSWORD_MAX_DAYS = 1
OPERATIONAL_LOG_MIN_DAYS = 365
# Methods without an authorizer, and why each is public.
PUBLIC_METHODS = {
    ("/health", "GET"): "public health check by design (no data)",
    ("/web", "GET"): "the web client's sign-in page (static, from S3; no data)",
    ("/web/{asset+}", "GET"): "the web client's static files (from S3; no data)",
}
# The web client's site bucket: SSE-S3 like the access-log bucket, for its own reason.
WEB_SSE_S3_REASON = (
    "the web client's static site is public code every browser downloads, read by API "
    "Gateway's S3 integration, which would otherwise need the key"
)
