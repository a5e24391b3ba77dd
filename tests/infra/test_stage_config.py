"""The typed stage: region pinning, every class of config error, and cumulative scopes."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import pytest

from infra.config_source import (
    pulumi_config_strings,
    read_stage_file,
    split_namespace,
    stage_from_config,
)
from infra.stage import STACK_PHASES, RegionRefused, StageConfigError, parse_stage

STACKS = list(STACK_PHASES)


def config_of(stack: str) -> dict[str, Any]:
    return copy.deepcopy(read_stage_file(stack))


def parse(stack: str, config: dict[str, Any]):  # type: ignore[no-untyped-def]
    return stage_from_config(stack, config)[0]


@pytest.mark.parametrize("stack", STACKS)
def test_stage_files_parse(stack: str) -> None:
    stage = parse(stack, config_of(stack))
    assert stage.phase == STACK_PHASES[stack]
    assert stage.region == "ap-east-1"


def test_ledger_trails_per_phase_reach_the_functions() -> None:
    """docs/ledger.md's arithmetic: ~200 audited actions/s per trail on Lambda; phase 3's
    bursts (~1,070/s) need 8 trails (~1,600/s)."""
    from infra.components.sharing_service import SharingServiceArgs, service_environment

    trails = {s: parse(s, config_of(s)).capacity.ledger_trails for s in STACKS}
    assert trails == {
        "phase1-specialist": 1,
        "phase2-hospital-authority": 4,
        "phase3-private-practice": 8,
    }
    assert min(trails.values()) * 200 >= 34 and trails["phase3-private-practice"] * 200 >= 1070
    fields = {f: None for f in SharingServiceArgs.__dataclass_fields__}
    stage = parse("phase3-private-practice", config_of("phase3-private-practice"))
    args = SharingServiceArgs(**{**fields, "capacity": stage.capacity, "table_names": {}})
    assert service_environment(args)["HUB_LEDGER_TRAILS"] == "8"


@pytest.mark.parametrize("stack", STACKS)
def test_engine_strings_parse_to_the_same_stage(stack: str) -> None:
    """The engine passes JSON/strings; stage files give YAML types: one Stage either way."""
    config = config_of(stack)
    assert parse(stack, pulumi_config_strings(config)) == parse(stack, config)


@pytest.mark.parametrize("region", ["us-east-1", "ap-southeast-1", "", None])
def test_other_regions_are_refused_with_the_reason(region: object) -> None:
    config = config_of("phase1-specialist")
    config["aws:region"] = region
    with pytest.raises(RegionRefused, match=r"aws:region.*ap-east-1.*Cap\. 486"):
        parse("phase1-specialist", config)


def test_region_is_checked_before_anything_else() -> None:
    config = {"aws:region": "eu-west-1", "hub:phase": "not even a number"}
    with pytest.raises(RegionRefused):
        parse("phase1-specialist", config)


def _mutate(stack: str, key: str, value: Any) -> dict[str, Any]:
    config = config_of(stack)
    if value is _DELETE:
        del config[key]
    else:
        config[key] = value
    return config


_DELETE = object()

CONFIG_ERRORS = [
    # (stack, key, value, the key named in the message, what it says)
    ("phase1-specialist", "hub:phase", _DELETE, "hub:phase", "missing"),
    ("phase1-specialist", "hub:phase", "one", "hub:phase", "integer"),
    ("phase1-specialist", "hub:phase", 2, "hub:phase", "1 for stack"),
    ("phase1-specialist", "hub:cohort", [], "hub:cohort", "at least one"),
    (
        "phase1-specialist",
        "hub:cohort",
        [{"id": "x1", "name": "X", "type": "hospital"}],
        "hub:cohort[0].type",
        "one of",
    ),
    (
        "phase1-specialist",
        "hub:cohort",
        [{"id": "vg", "name": "V", "type": "ha_hospital"}],
        "hub:cohort[0].type",
        "admitted from phase 2",
    ),
    (
        "phase2-hospital-authority",
        "hub:cohort",
        [{"id": "pc", "name": "P", "type": "private_clinic"}],
        "hub:cohort[0].type",
        "admitted from phase 3",
    ),
    (
        "phase1-specialist",
        "hub:cohort",
        [
            {"id": "a1", "name": "A", "type": "specialist_alliance"},
            {"id": "a1", "name": "B", "type": "specialist_alliance"},
        ],
        "hub:cohort[1].id",
        "twice",
    ),
    (
        "phase1-specialist",
        "hub:cohort",
        [{"id": "a1", "name": "A"}],
        "hub:cohort[0].type",
        "missing",
    ),
    (
        "phase1-specialist",
        "hub:federation",
        [
            {
                "institutionId": "harbour-cardiac-alliance",
                "name": "Harbour",
                "protocol": "SAML",
                "metadataUrl": "https://idp.example/metadata",
            }
        ],
        "hub:federation",
        "phase 2",
    ),
    (
        "phase2-hospital-authority",
        "hub:federation",
        [
            {
                "institutionId": "unknown",
                "name": "Idp",
                "protocol": "SAML",
                "metadataUrl": "https://idp.example/metadata",
            }
        ],
        "hub:federation[0].institutionId",
        "from hub:cohort",
    ),
    (
        "phase2-hospital-authority",
        "hub:federation",
        [
            {
                "institutionId": "victoria-general",
                "name": "Idp",
                "protocol": "SAML",
                "metadataUrl": "http://idp.example/metadata",
            }
        ],
        "hub:federation[0].metadataUrl",
        "https",
    ),
    (
        "phase2-hospital-authority",
        "hub:federation",
        [{"institutionId": "victoria-general", "name": "Idp", "protocol": "LDAP"}],
        "hub:federation[0].protocol",
        "'SAML' or 'OIDC'",
    ),
    (
        "phase2-hospital-authority",
        "hub:federation",
        [{"name": "Idp", "protocol": "SAML", "metadataUrl": "https://idp.example/m"}],
        "hub:federation[0].institutionId",
        "either institutionId",
    ),
    (
        "phase2-hospital-authority",
        "hub:federation",
        [
            {
                "institutionId": "victoria-general",
                "hospitalCodes": {"VGH": "victoria-general"},
                "name": "Idp",
                "protocol": "SAML",
                "metadataUrl": "https://idp.example/m",
            }
        ],
        "hub:federation[0].institutionId",
        "not both",
    ),
    (
        "phase2-hospital-authority",
        "hub:federation",
        [
            {
                "hospitalCodes": {"VGH": "nowhere"},
                "name": "Idp",
                "protocol": "SAML",
                "metadataUrl": "https://idp.example/m",
            }
        ],
        "hub:federation[0].hospitalCodes.VGH",
        "from hub:cohort",
    ),
    (
        "phase2-hospital-authority",
        "hub:federation",
        [
            {
                "hospitalCodes": {"vgh": "victoria-general"},
                "name": "Idp",
                "protocol": "SAML",
                "metadataUrl": "https://idp.example/m",
            }
        ],
        "hub:federation[0].hospitalCodes.vgh",
        "upper-case",
    ),
    (
        "phase2-hospital-authority",
        "hub:federation",
        [
            {
                "institutionId": "victoria-general",
                "groupRoles": {"HA-IT": "platform_admin"},
                "name": "Idp",
                "protocol": "SAML",
                "metadataUrl": "https://idp.example/m",
            }
        ],
        "hub:federation[0].groupRoles.HA-IT",
        "vouches for clinicians",
    ),
    (
        "phase2-hospital-authority",
        "hub:federation",
        [
            {
                "institutionId": "victoria-general",
                "name": "Victoria_General",
                "protocol": "SAML",
                "metadataUrl": "https://idp.example/m",
            }
        ],
        "hub:federation[0].name",
        "letters, digits or '-'",
    ),
    ("phase1-specialist", "hub:auditRetentionYears", 1, "hub:auditRetentionYears", "from 7"),
    ("phase1-specialist", "hub:auditRetentionYears", True, "hub:auditRetentionYears", "integer"),
    (
        "phase1-specialist",
        "hub:capacity",
        {"lambdaReservedConcurrency": 5},
        "hub:capacity.apiThrottleBurstLimit",
        "missing",
    ),
    (
        "phase1-specialist",
        "hub:capacity",
        {"lambdaReservedConcurrency": 0, "apiThrottleRateLimit": 5, "apiThrottleBurstLimit": 5},
        "hub:capacity.lambdaReservedConcurrency",
        "from 1",
    ),
    (
        "phase1-specialist",
        "hub:capacity",
        {
            "lambdaReservedConcurrency": 5,
            "apiThrottleRateLimit": "fast",
            "apiThrottleBurstLimit": 5,
        },
        "hub:capacity.apiThrottleRateLimit",
        "number",
    ),
    (
        "phase1-specialist",
        "hub:capacity",
        {
            "lambdaReservedConcurrency": 5,
            "apiThrottleRateLimit": 5,
            "apiThrottleBurstLimit": 5,
            "ledgerTrails": 65,
        },
        "hub:capacity.ledgerTrails",
        "64",
    ),
    (
        "phase1-specialist",
        "hub:features",
        {"selfRegistration": True, "waf": True, "communityCareIntake": False},
        "hub:features.selfRegistration",
        "before phase 3",
    ),
    (
        "phase1-specialist",
        "hub:features",
        {"selfRegistration": False, "waf": True, "communityCareIntake": True},
        "hub:features.communityCareIntake",
        "phase 1",
    ),
    (
        "phase3-private-practice",
        "hub:features",
        {"selfRegistration": True, "waf": False, "communityCareIntake": True},
        "hub:features.waf",
        "true",
    ),
    (
        "phase1-specialist",
        "hub:features",
        {"selfRegistration": False, "waf": False, "communityCareIntake": False},
        "hub:features.waf",
        "every phase",
    ),
    (
        "phase1-specialist",
        "hub:features",
        {"selfRegistration": "maybe", "waf": False, "communityCareIntake": False},
        "hub:features.selfRegistration",
        "true or false",
    ),
    (
        "phase1-specialist",
        "hub:features",
        {"selfRegistration": False, "waf": False, "communityCareIntake": False, "chat": True},
        "hub:features.chat",
        "known keys",
    ),
    (
        "phase1-specialist",
        "hub:intakeSystems",
        [{"name": "cms-a", "institutionId": "harbour-cardiac-alliance"}],
        "hub:intakeSystems",
        "communityCareIntake",
    ),
    (
        "phase2-hospital-authority",
        "hub:intakeSystems",
        [{"name": "cms-a", "institutionId": "peak-family-clinic"}],
        "hub:intakeSystems[0].institutionId",
        "hub:cohort",
    ),
    (
        "phase2-hospital-authority",
        "hub:intakeSystems",
        [
            {"name": "cms-a", "institutionId": "victoria-general"},
            {"name": "cms-a", "institutionId": "victoria-general"},
        ],
        "hub:intakeSystems[1].name",
        "unique",
    ),
    (
        "phase2-hospital-authority",
        "hub:intakeSystems",
        [{"name": "CMS A", "institutionId": "victoria-general"}],
        "hub:intakeSystems[0].name",
        "lower-case",
    ),
    (
        "phase1-specialist",
        "hub:alarmSubscription",
        {"protocol": "sms", "endpoint": "+852"},
        "hub:alarmSubscription.protocol",
        "'email' or 'https'",
    ),
    (
        "phase1-specialist",
        "hub:alarmSubscription",
        {"protocol": "email", "endpoint": "nobody"},
        "hub:alarmSubscription.endpoint",
        "email address",
    ),
    (
        "phase1-specialist",
        "hub:oauthCallbackUrls",
        ["http://app.example/cb"],
        "hub:oauthCallbackUrls[0]",
        "https",
    ),
    (
        "phase1-specialist",
        "hub:oauthCallbackUrls",
        "https://app.example/cb",
        "hub:oauthCallbackUrls",
        "a list",
    ),
    ("phase1-specialist", "hub:wafEnabled", True, "hub:wafEnabled", "documented keys"),
]


@pytest.mark.parametrize(("stack", "key", "value", "named", "says"), CONFIG_ERRORS)
def test_config_errors_name_the_key_and_the_expectation(
    stack: str, key: str, value: Any, named: str, says: str
) -> None:
    with pytest.raises(StageConfigError) as error:
        parse(stack, _mutate(stack, key, value))
    assert error.value.key == named
    assert named in str(error.value) and says in str(error.value)


def test_config_errors_stop_before_any_resource_is_declared() -> None:
    from infra.mockrun import PreviewMocks, run_program

    mocks = PreviewMocks()
    with pytest.raises(StageConfigError):
        run_program(
            "phase1-specialist", _mutate("phase1-specialist", "hub:phase", "x"), mocks=mocks
        )
    assert mocks.captured == []


OIDC_PROVIDER = {
    "institutionId": "victoria-general",
    "name": "VictoriaOidc",
    "protocol": "OIDC",
    "issuer": "https://login.victoria.example",
    "clientId": "hub-client",
}


def test_oidc_provider_needs_its_secret() -> None:
    config = _mutate("phase2-hospital-authority", "hub:federation", [OIDC_PROVIDER])
    with pytest.raises(StageConfigError, match=r"hub:oidcClientSecrets\.VictoriaOidc.*missing"):
        stage_from_config("phase2-hospital-authority", config)
    config["hub:oidcClientSecrets"] = json.dumps({"VictoriaOidc": "synthetic-secret"})
    stage, secrets = stage_from_config("phase2-hospital-authority", config)
    assert stage.federation[0].protocol == "OIDC"
    assert secrets == {"VictoriaOidc": "synthetic-secret"}


def test_secret_values_never_reach_the_stage_object() -> None:
    config = _mutate("phase2-hospital-authority", "hub:federation", [OIDC_PROVIDER])
    config["hub:oidcClientSecrets"] = {"VictoriaOidc": "synthetic-secret"}
    stage, _ = stage_from_config("phase2-hospital-authority", config)
    assert "synthetic-secret" not in repr(stage)


def test_scopes_are_cumulative_across_phases() -> None:
    stages = [parse(s, config_of(s)) for s in STACKS]
    for earlier, later in itertools.pairwise(stages):
        assert set(earlier.cohort) <= set(later.cohort), f"{later.stack} drops institutions"
        assert set(earlier.federation) <= set(later.federation)
        assert later.capacity.lambda_reserved_concurrency >= (
            earlier.capacity.lambda_reserved_concurrency
        )
        assert later.capacity.api_throttle_rate_limit >= earlier.capacity.api_throttle_rate_limit
        for feature in ("self_registration", "waf", "community_care_intake"):
            assert getattr(later.features, feature) >= getattr(earlier.features, feature)


def test_phase_features_switch_on_where_documented() -> None:
    p1, p2, p3 = (parse(s, config_of(s)) for s in STACKS)
    assert not p1.federation and p2.federation and p3.federation
    assert not p1.features.community_care_intake and p2.features.community_care_intake
    assert not p2.features.self_registration and p3.features.self_registration
    assert p1.features.waf and p2.features.waf and p3.features.waf


def test_namespace_split_ignores_other_projects_keys() -> None:
    region, raw, secrets = split_namespace(
        {"aws:region": "ap-east-1", "other:phase": 9, "hub:phase": 1}
    )
    assert (region, raw, secrets) == ("ap-east-1", {"phase": 1}, {})


def test_parse_stage_rejects_unknown_stack_phase_pairs_only_for_known_stacks() -> None:
    raw = split_namespace(config_of("phase1-specialist"))[1]
    assert parse_stage("dev-sandbox", "ap-east-1", raw).stack == "dev-sandbox"


def test_web_origins_are_the_origins_of_the_oauth_callback_urls() -> None:
    config = config_of("phase1-specialist")
    config["hub:oauthCallbackUrls"] = [
        "https://app.hub.example/auth/callback",
        "https://app.hub.example/other",
        "http://localhost:8000/auth/callback",
    ]
    stage = parse("phase1-specialist", config)
    assert stage.web_origins == ("http://localhost:8000", "https://app.hub.example")
