"""The control catalogue: each check id, requirement and control once, and one mapping
for one state whether the pack checks it before deployment or verify after.

The READMEs' tables are read as documents: each check or rule listed once, with the
control and the requirement numbers the code binds it to.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from infra.controls import catalogue
from infra.controls.catalogue import CONTROLS, REQUIREMENTS, Control, Framework, Requirement
from infra.policies.pack import BINDINGS
from infra.verify.checks import CHECK_SPECS, CHECKS

ROOT = Path(__file__).resolve().parents[3]

# Pack policy -> the verify checks of the same state (the pack's trail rule covers four).
SAME_STATE = {
    "kms-key-rotation-enabled": ("keys.rotation_enabled",),
    "every-bucket-encrypted-with-customer-kms-key": ("buckets.default_encryption",),
    "bucket-public-access-fully-blocked": ("buckets.public_access_block",),
    "every-bucket-has-public-access-block": ("buckets.public_access_block",),
    "bucket-policy-denies-insecure-transport": ("buckets.denies_insecure_transport",),
    "every-bucket-denies-insecure-transport": ("buckets.denies_insecure_transport",),
    "cloudtrail-validated-multi-region-and-kms-encrypted": (
        "trail.logging",
        "trail.multi_region",
        "trail.log_file_validation",
        "trail.kms_encrypted",
    ),
    "dynamodb-table-encrypted-with-customer-key": ("dynamodb.customer_key_encryption",),
    "dynamodb-table-point-in-time-recovery-enabled": ("dynamodb.pitr",),
    "cognito-user-pool-requires-mfa": ("cognito.mfa_on",),
    "api-enforces-tls13-security-policy": ("api.tls_policy",),
    "lambda-not-publicly-invocable": ("lambda.no_public_policy",),
    "iam-policy-grants-no-wildcards-on-data-stores": ("lambda.role_least_privilege",),
    "log-group-encrypted-and-retained": ("logs.encrypted_retained",),
}


def _duplicates(items: list[str]) -> list[str]:
    return sorted(item for item, count in Counter(items).items() if count > 1)


def _bound_controls() -> list[tuple[str, tuple[Control, ...]]]:
    return [(b.name, b.controls) for b in BINDINGS] + [(c.id, c.controls) for c in CHECK_SPECS]


def test_every_check_id_is_unique_across_the_pack_and_verify() -> None:
    ids = [b.name for b in BINDINGS] + [c.id for c in CHECK_SPECS]
    assert _duplicates(ids) == []


def test_every_requirement_is_defined_once() -> None:
    assert _duplicates([f"{r.framework} {r.ref}" for r in REQUIREMENTS]) == []
    defined = [v for v in vars(catalogue).values() if isinstance(v, Requirement)]
    assert len(defined) == len(REQUIREMENTS)


def test_every_control_is_defined_once_and_evidences_iso() -> None:
    assert _duplicates([c.id for c in CONTROLS]) == []
    assert _duplicates([c.title for c in CONTROLS]) == []
    for control in CONTROLS:
        frameworks = [r.framework for r in control.requirements]
        assert Framework.ISO_27799 in frameworks, control.id
        assert _duplicates([str(r) for r in control.requirements]) == [], control.id
        assert all(any(r is known for known in REQUIREMENTS) for r in control.requirements)


def test_cap486_lists_every_principle_each_with_its_own_evidence() -> None:
    """DPP1 to DPP6 are all in the catalogue; each is evidenced by controls of its own or
    says where the project meets it instead; no principle carries every control (the
    old roll-up put every check under DPP4 and said nothing)."""
    principles = {r.ref.split("(")[0]: r for r in REQUIREMENTS if r.framework is Framework.CAP_486}
    assert {f"DPP{n}" for n in range(1, 7)} <= set(principles)
    for requirement in (r for r in REQUIREMENTS if r.framework is Framework.CAP_486):
        evidencing = [c for c in CONTROLS if requirement in c.requirements]
        assert evidencing or requirement in catalogue.BEYOND_DEPLOYMENT, requirement.ref
        assert len(evidencing) < len(CONTROLS) / 2, requirement.ref
    # availability is no evidence of a data protection principle
    assert not [
        r for r in catalogue.API_THROTTLING.requirements if r.framework is Framework.CAP_486
    ]


def test_requirements_sort_in_each_frameworks_own_clause_order() -> None:
    ordered = [r.ref for r in sorted(REQUIREMENTS, key=lambda r: r.sort_key())]
    assert ordered.index("9.2") < ordered.index("9.2.1") < ordered.index("10.1.1")
    assert ordered.index("12.4.3") < ordered.index("18.1.4")
    cap486 = [
        r.ref
        for r in sorted(REQUIREMENTS, key=lambda r: r.sort_key())
        if r.framework is Framework.CAP_486
    ]
    assert cap486[0] == "DPP1" and cap486[-1] == "s33"
    assert cap486.index("DPP4(1)") < cap486.index("DPP4(1)(b)") < cap486.index("DPP5")
    assert ordered.index("1.16") < ordered.index("2.1.1") < ordered.index("3.9")


def test_every_mapping_is_a_catalogue_entry() -> None:
    for name, controls in _bound_controls():
        assert controls, name
        for control in controls:
            assert any(control is entry for entry in CONTROLS), (name, control.id)


def test_every_control_is_evidenced_by_some_check() -> None:
    used = {control.id for _, controls in _bound_controls() for control in controls}
    assert {c.id for c in CONTROLS} - used == set()


def test_one_state_has_one_mapping_before_and_after_deployment() -> None:
    bindings = {b.name: b for b in BINDINGS}
    assert set(SAME_STATE) <= set(bindings)
    for policy, check_ids in SAME_STATE.items():
        after = {c for check_id in check_ids for c in CHECKS[check_id].controls}
        assert set(bindings[policy].controls) == after, policy


def test_requirements_are_listed_once_by_framework() -> None:
    controls = (catalogue.MFA_REQUIRED, catalogue.FUNCTION_NOT_PUBLIC, catalogue.LEAST_PRIVILEGE)
    listed = catalogue.requirements_of(controls)
    assert set(listed) == {r for c in controls for r in c.requirements}
    assert len(listed) == len(set(listed))
    order = [r.sort_key() for r in listed]
    assert order == sorted(order)
    assert [str(r) for r in listed][:1] == [
        "ISO 27799 9.1.2 Access to networks and network services"
    ]
    assert [r.tag for r in listed][-1] == "aws-fsbp:Lambda.1"


# --- the READMEs --------------------------------------------------------------------------


def _rows(readme: Path, header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header row starts with ``header``."""
    lines = readme.read_text().splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _by_framework(requirements: tuple[Requirement, ...]) -> list[str]:
    return [
        ", ".join(r.ref for r in requirements if r.framework is framework) or "-"
        for framework in Framework
    ]


def _control_cell(controls: tuple[Control, ...]) -> str:
    return ", ".join(f"`{c.id}`" for c in controls)


def test_verify_readme_lists_each_check_once_with_its_controls() -> None:
    rows = _rows(ROOT / "infra" / "verify" / "README.md", "| check | what it verifies |")
    ids = [row[0].strip("`") for row in rows]
    assert _duplicates(ids) == []
    assert ids == [c.id for c in CHECK_SPECS]
    for row, spec in zip(rows, CHECK_SPECS, strict=True):
        assert row[1:] == [
            spec.title,
            _control_cell(spec.controls),
            *_by_framework(spec.requirements),
        ]


def test_pack_readme_lists_each_rule_once_with_its_controls() -> None:
    rows = _rows(ROOT / "infra" / "policies" / "README.md", "| rule | kind | severity |")
    names = [row[0].strip("`") for row in rows]
    assert _duplicates(names) == []
    assert names == [b.rule_name for b in BINDINGS]
    for row, binding in zip(rows, BINDINGS, strict=True):
        assert row[2] == binding.severity.value, binding.name
        assert row[3:] == [_control_cell(binding.controls), *_by_framework(binding.requirements)]


def test_findings_not_applicable_are_written_and_covered() -> None:
    from infra.policies.pack import BINDINGS
    from infra.verify.checks import CHECKS, FINDINGS_NOT_APPLICABLE

    policies = {b.name for b in BINDINGS}
    readme = (ROOT / "infra" / "verify" / "README.md").read_text()
    for entry in FINDINGS_NOT_APPLICABLE:
        assert len(entry.reason) > 200, entry.finding
        assert entry.covered_by and all(c in CHECKS or c in policies for c in entry.covered_by)
        assert f"**{entry.finding}.**" in readme, entry.finding
