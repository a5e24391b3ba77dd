"""The program declares what post-deploy verification will demand.

Verification keeps its own baseline (it must not simply follow the program: a
loosened constant would then loosen the check too). These tests catch drift early,
before a deploy: if one fails, either the program loosened a setting or the baseline
needs a deliberate change.
"""

from __future__ import annotations

from infra.components import identity, keys, sharing_service, tables
from infra.controls import predicates
from infra.verify import baseline


def test_role_groups_and_custom_attributes_match() -> None:
    assert set(identity.ROLE_GROUPS) == set(baseline.ROLE_GROUPS)
    declared = {name: mutable for name, (mutable, _, _) in identity.CUSTOM_ATTRIBUTES.items()}
    assert declared == baseline.CUSTOM_ATTRIBUTES


def test_password_policy_meets_the_baseline() -> None:
    assert identity.PASSWORD_MIN_LENGTH >= baseline.PASSWORD_MIN_LENGTH


def test_api_security_policy_is_tls13_only() -> None:
    assert predicates.is_tls13_only_policy(sharing_service.API_SECURITY_POLICY)


def test_rotation_period_and_audit_tables_match() -> None:
    assert keys.ROTATION_PERIOD_DAYS <= predicates.MAX_ROTATION_PERIOD_DAYS
    audit_tables = {name for name, spec in tables.TABLE_SPECS.items() if spec.audit}
    assert audit_tables == set(baseline.AUDIT_KEY_TABLES)
