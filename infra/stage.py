"""The typed stage: one rollout phase's configuration, parsed once and validated.

Only the program's entry point reads stack configuration. It hands the raw values
of the ``hub:`` namespace (plus ``aws:region``) to :func:`parse_stage`, which
returns a frozen :class:`Stage` or raises :class:`StageConfigError` naming the key
and what was expected. Nothing is declared before parsing succeeds.

Guarantees:
- the region is ``ap-east-1`` (data residency under Cap. 486), checked first;
- every key is known (a misspelt key is an error, not a silently ignored default);
- phase-gated features only appear from the phase that introduces them;
- values arrive either as YAML-native types (stage files read directly) or as the
  strings the Pulumi engine passes; both parse to the same ``Stage``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

# One definition of institution types and phases, shared with the service (which admits
# institutions as data) and re-exported here for the program and the stage files.
from app.identity.affiliations import (
    FIRST_PHASE_FOR_TYPE,
    HOSPITAL_CODE_CLAIM,
    IDP_GRANTABLE_ROLES,
    InstitutionType,
    ProviderMapping,
)

REQUIRED_REGION = "ap-east-1"

STACK_PHASES: dict[str, int] = {
    "phase1-specialist": 1,
    "phase2-hospital-authority": 2,
    "phase3-private-practice": 3,
}

# One hub: phase 1's stack is the core; each later phase's stack is a layer over it,
# reading the core's outputs through a StackReference. A layer needs the phase below it.
CORE_STACK = "phase1-specialist"


def stack_for_phase(phase: int) -> str:
    """The stack that deploys ``phase`` (``phase1-specialist`` for 1, ...)."""
    for stack, p in STACK_PHASES.items():
        if p == phase:
            return stack
    raise KeyError(phase)


def layer_below(stack: str) -> str | None:
    """The stack a layer needs deployed first (phase N needs phase N-1); None: the core."""
    phase = STACK_PHASES[stack]
    return None if phase == 1 else stack_for_phase(phase - 1)


def layers_above(stack: str) -> list[str]:
    """The stacks that build on ``stack`` (its higher phases), lowest first."""
    return [s for s, p in STACK_PHASES.items() if p > STACK_PHASES[stack]]


MIN_AUDIT_RETENTION_YEARS = 7
MAX_AUDIT_RETENTION_YEARS = 30


class StageConfigError(ValueError):
    """A stack configuration value is missing or invalid. The message names the key."""

    def __init__(self, key: str, expected: str, got: object = None, *, missing: bool = False):
        self.key = key
        if missing:
            message = f"{key}: missing; expected {expected}"
        else:
            message = f"{key}: expected {expected}, got {got!r}"
        super().__init__(message)


class RegionRefused(StageConfigError):
    """The stack targets a region other than ap-east-1."""

    def __init__(self, region: object):
        super().__init__(
            "aws:region",
            f"'{REQUIRED_REGION}' (patient data must stay in Hong Kong: data residency "
            "under the Personal Data (Privacy) Ordinance, Cap. 486; the program refuses "
            "every other region)",
            region,
        )


@dataclass(frozen=True)
class Institution:
    id: str
    name: str
    type: InstitutionType

    @property
    def phase(self) -> int:
        """The rollout phase whose cohort it belongs to: its type's first phase."""
        return FIRST_PHASE_FOR_TYPE[self.type]


@dataclass(frozen=True)
class FederationProvider:
    """An identity provider federated into the user pool (phase 2+).

    It serves one institution (``institution_id``), or many hospitals (``hospital_codes``:
    the hospital code its users carry -> institution id; more are mapped as data when
    hospitals are admitted later). ``group_roles`` maps its group claim's values to hub
    roles (clinical roles only); empty means roles come from affiliations.
    """

    institution_id: str | None
    name: str
    protocol: Literal["SAML", "OIDC"]
    metadata_url: str | None = None  # SAML
    issuer: str | None = None  # OIDC
    client_id: str | None = None  # OIDC; the secret comes from hub:oidcClientSecrets
    # (code, institution id) and (group, role) pairs: tuples keep the stage hashable.
    hospital_codes: tuple[tuple[str, str], ...] = ()
    group_roles: tuple[tuple[str, str], ...] = ()

    def mapping(self) -> ProviderMapping:
        """How the hub places this provider's users (seeded into the institutions table)."""
        return ProviderMapping(
            self.name,
            institution=self.institution_id,
            claim=None if self.institution_id else HOSPITAL_CODE_CLAIM,
            group_roles=dict(self.group_roles),
        )


@dataclass(frozen=True)
class IntakeSystem:
    """A clinic management system that submits records through community-care intake:
    one app client (client-credentials grant) of its own, submitting for one institution
    of the cohort (the mapping is seeded into the institutions table as data)."""

    name: str
    institution_id: str


@dataclass(frozen=True)
class Capacity:
    lambda_reserved_concurrency: int
    api_throttle_rate_limit: float
    api_throttle_burst_limit: int
    # Audit ledger trails (docs/ledger.md): ~200 audited actions/s each on Lambda.
    ledger_trails: int = 1


@dataclass(frozen=True)
class Features:
    self_registration: bool
    waf: bool
    community_care_intake: bool


@dataclass(frozen=True)
class AlarmSubscription:
    protocol: Literal["email", "https"]
    endpoint: str


@dataclass(frozen=True)
class Stage:
    stack: str
    phase: int
    region: str
    cohort: tuple[Institution, ...]
    federation: tuple[FederationProvider, ...]
    audit_retention_years: int
    capacity: Capacity
    features: Features
    alarm_subscription: AlarmSubscription
    oauth_callback_urls: tuple[str, ...]
    lambda_bundle: str
    web_bundle: str = "web/dist"
    intake_systems: tuple[IntakeSystem, ...] = ()

    @property
    def is_layer(self) -> bool:
        """Phases 2 and 3 are layers over the core (phase 1's stack)."""
        return self.phase > 1

    @property
    def name_prefix(self) -> str:
        """Short, stable prefix for physical names: ``hub-p1`` .. ``hub-p3``."""
        return f"hub-p{self.phase}"

    def institution_ids(self) -> tuple[str, ...]:
        return tuple(i.id for i in self.cohort)

    @property
    def web_origins(self) -> tuple[str, ...]:
        """The origins the hub's web client is served from: those of its OAuth callback
        URLs (``scheme://host[:port]``), the only origins the shard bucket's CORS allows."""
        from urllib.parse import urlsplit

        origins = {
            f"{parts.scheme}://{parts.netloc}"
            for parts in (urlsplit(url) for url in self.oauth_callback_urls)
        }
        return tuple(sorted(origins))


# Every key of the hub: namespace, with whether it is required. Documented in docs/stages.md.
KNOWN_KEYS: dict[str, bool] = {
    "phase": True,
    "cohort": True,
    "federation": False,
    "auditRetentionYears": True,
    "capacity": True,
    "features": True,
    "alarmSubscription": True,
    "oauthCallbackUrls": True,
    "lambdaBundle": False,
    "webBundle": False,
    "intakeSystems": False,
}

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
# No "_": Cognito names a federated user "<provider>_<id>", and the pre sign-up trigger
# reads the provider back from that name.
_PROVIDER_NAME_RE = re.compile(r"^[A-Za-z0-9-]{3,32}$")
_HOSPITAL_CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,15}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _decode(value: Any) -> Any:
    """Pulumi passes structured config as JSON strings; stage files give native types."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("[", "{"):
            try:
                return json.loads(stripped)
            except json.JSONDecodeError:
                return value
    return value


def _int(key: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise StageConfigError(key, f"an integer from {lo} to {hi}", value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value.strip())
    if not isinstance(value, int) or not lo <= value <= hi:
        raise StageConfigError(key, f"an integer from {lo} to {hi}", value)
    return value


def _number(key: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool):
        raise StageConfigError(key, f"a number from {lo} to {hi}", value)
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise StageConfigError(key, f"a number from {lo} to {hi}", value) from None
    if not isinstance(value, int | float) or not lo <= float(value) <= hi:
        raise StageConfigError(key, f"a number from {lo} to {hi}", value)
    return float(value)


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise StageConfigError(key, "true or false", value)


def _str(key: str, value: Any, pattern: re.Pattern[str] | None = None, what: str = "") -> str:
    if not isinstance(value, str) or not value.strip():
        raise StageConfigError(key, what or "a non-empty string", value)
    if pattern is not None and not pattern.match(value):
        raise StageConfigError(key, what or f"a string matching {pattern.pattern}", value)
    return value


def _https_url(key: str, value: Any, *, allow_loopback_http: bool = False) -> str:
    text = _str(key, value, what="an https:// URL")
    ok = text.startswith("https://") and len(text) > len("https://")
    if allow_loopback_http and re.match(r"^http://(localhost|127\.0\.0\.1)(:\d+)?(/|$)", text):
        ok = True
    if not ok:
        raise StageConfigError(key, "an https:// URL", value)
    return text


def _mapping(key: str, value: Any, allowed: set[str], required: set[str]) -> dict[str, Any]:
    value = _decode(value)
    if not isinstance(value, dict):
        raise StageConfigError(key, f"a mapping with keys {sorted(allowed)}", value)
    unknown = set(value) - allowed
    if unknown:
        raise StageConfigError(
            f"{key}.{sorted(unknown)[0]}", f"one of the known keys {sorted(allowed)}", "unknown key"
        )
    for name in sorted(required):
        if name not in value:
            raise StageConfigError(f"{key}.{name}", "a value", missing=True)
    return value


def _list(key: str, value: Any) -> list[Any]:
    value = _decode(value)
    if not isinstance(value, list):
        raise StageConfigError(key, "a list", value)
    return value


def _parse_cohort(raw: Any, phase: int) -> tuple[Institution, ...]:
    items = _list("hub:cohort", raw)
    if not items:
        raise StageConfigError("hub:cohort", "at least one admitted institution", raw)
    cohort: list[Institution] = []
    seen: set[str] = set()
    for n, item in enumerate(items):
        key = f"hub:cohort[{n}]"
        entry = _mapping(key, item, {"id", "name", "type"}, {"id", "name", "type"})
        inst_id = _str(f"{key}.id", entry["id"], _ID_RE, "a lowercase id (a-z, 0-9, '-')")
        if inst_id in seen:
            raise StageConfigError(f"{key}.id", "an id not used twice in the cohort", inst_id)
        seen.add(inst_id)
        try:
            inst_type = InstitutionType(entry["type"])
        except ValueError:
            raise StageConfigError(
                f"{key}.type", f"one of {[t.value for t in InstitutionType]}", entry["type"]
            ) from None
        first = FIRST_PHASE_FOR_TYPE[inst_type]
        if phase < first:
            raise StageConfigError(
                f"{key}.type",
                f"an institution type admitted by phase {phase} "
                f"({inst_type.value} is admitted from phase {first})",
                inst_type.value,
            )
        cohort.append(Institution(inst_id, _str(f"{key}.name", entry["name"]), inst_type))
    return tuple(cohort)


_INTAKE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")


def _parse_intake_systems(
    raw: Any, features: Features, cohort: tuple[Institution, ...]
) -> tuple[IntakeSystem, ...]:
    items = _list("hub:intakeSystems", raw)
    if items and not features.community_care_intake:
        raise StageConfigError(
            "hub:intakeSystems",
            "no intake systems unless hub:features.communityCareIntake is on",
            f"{len(items)} system(s)",
        )
    ids = {i.id for i in cohort}
    systems: list[IntakeSystem] = []
    for n, item in enumerate(items):
        key = f"hub:intakeSystems[{n}]"
        entry = _mapping(key, item, {"name", "institutionId"}, {"name", "institutionId"})
        name = _str(
            f"{key}.name", entry["name"], _INTAKE_NAME_RE, "2-40 lower-case letters, digits, '-'"
        )
        if any(s.name == name for s in systems):
            raise StageConfigError(f"{key}.name", "a unique system name", name)
        institution = _str(f"{key}.institutionId", entry["institutionId"])
        if institution not in ids:
            raise StageConfigError(
                f"{key}.institutionId", "an institution of this stage's hub:cohort", institution
            )
        systems.append(IntakeSystem(name, institution))
    return tuple(systems)


def _parse_federation(
    raw: Any, phase: int, cohort: tuple[Institution, ...]
) -> tuple[FederationProvider, ...]:
    items = _list("hub:federation", raw)
    if items and phase < 2:
        raise StageConfigError(
            "hub:federation",
            "no federated providers in phase 1 (federation starts in phase 2)",
            f"{len(items)} provider(s)",
        )
    ids = {i.id for i in cohort}
    providers: list[FederationProvider] = []
    names: set[str] = set()
    for n, item in enumerate(items):
        key = f"hub:federation[{n}]"
        entry = _mapping(
            key,
            item,
            {
                "institutionId",
                "hospitalCodes",
                "groupRoles",
                "name",
                "protocol",
                "metadataUrl",
                "issuer",
                "clientId",
            },
            {"name", "protocol"},
        )
        inst, codes = _provider_placement(key, entry, ids)
        roles = _group_roles(key, entry.get("groupRoles"))
        name = _str(
            f"{key}.name",
            entry["name"],
            _PROVIDER_NAME_RE,
            "a provider name of 3-32 letters, digits or '-'",
        )
        if name in names or name == "COGNITO":
            raise StageConfigError(f"{key}.name", "a unique provider name", name)
        names.add(name)
        protocol = entry["protocol"]
        if protocol == "SAML":
            if "issuer" in entry or "clientId" in entry:
                raise StageConfigError(f"{key}.issuer", "no OIDC keys on a SAML provider", "set")
            providers.append(
                FederationProvider(
                    inst,
                    name,
                    "SAML",
                    metadata_url=_https_url(f"{key}.metadataUrl", entry.get("metadataUrl")),
                    hospital_codes=codes,
                    group_roles=roles,
                )
            )
        elif protocol == "OIDC":
            if "metadataUrl" in entry:
                raise StageConfigError(
                    f"{key}.metadataUrl", "no SAML keys on an OIDC provider", "set"
                )
            providers.append(
                FederationProvider(
                    inst,
                    name,
                    "OIDC",
                    issuer=_https_url(f"{key}.issuer", entry.get("issuer")),
                    client_id=_str(f"{key}.clientId", entry.get("clientId")),
                    hospital_codes=codes,
                    group_roles=roles,
                )
            )
        else:
            raise StageConfigError(f"{key}.protocol", "'SAML' or 'OIDC'", protocol)
    return tuple(providers)


def _provider_placement(
    key: str, entry: Mapping[str, Any], ids: set[str]
) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """(institutionId, hospitalCodes): exactly one of them, naming cohort institutions."""
    if ("institutionId" in entry) == ("hospitalCodes" in entry):
        raise StageConfigError(
            f"{key}.institutionId",
            "either institutionId (a provider of one institution) or hospitalCodes (a "
            "provider of many hospitals), not both or neither",
            "both" if "institutionId" in entry else "neither",
        )
    if "institutionId" in entry:
        inst = _str(f"{key}.institutionId", entry["institutionId"])
        if inst not in ids:
            raise StageConfigError(
                f"{key}.institutionId", "an institution id from hub:cohort", inst
            )
        return inst, ()
    raw = _decode(entry["hospitalCodes"])
    if not isinstance(raw, dict) or not raw:
        raise StageConfigError(
            f"{key}.hospitalCodes", "a mapping of hospital code -> cohort institution id", raw
        )
    codes: dict[str, str] = {}
    for code, target in raw.items():
        code_key = f"{key}.hospitalCodes.{code}"
        _str(code_key, code, _HOSPITAL_CODE_RE, "an upper-case hospital code (A-Z, 0-9, '-')")
        if target not in ids:
            raise StageConfigError(code_key, "an institution id from hub:cohort", target)
        codes[str(code)] = str(target)
    return None, tuple(sorted(codes.items()))


def _group_roles(key: str, raw: Any) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    raw = _decode(raw)
    if not isinstance(raw, dict):
        raise StageConfigError(f"{key}.groupRoles", "a mapping of group -> role", raw)
    for group, role in raw.items():
        if role not in IDP_GRANTABLE_ROLES:
            raise StageConfigError(
                f"{key}.groupRoles.{group}",
                f"one of {sorted(IDP_GRANTABLE_ROLES)} (a provider vouches for clinicians; "
                "administrative roles are given in the hub)",
                role,
            )
    return tuple(sorted((str(g), str(r)) for g, r in raw.items()))


def _parse_features(raw: Any, phase: int) -> Features:
    allowed = {"selfRegistration", "waf", "communityCareIntake"}
    entry = _mapping("hub:features", raw, allowed, allowed)
    features = Features(
        self_registration=_bool("hub:features.selfRegistration", entry["selfRegistration"]),
        waf=_bool("hub:features.waf", entry["waf"]),
        community_care_intake=_bool(
            "hub:features.communityCareIntake", entry["communityCareIntake"]
        ),
    )
    if features.self_registration and phase < 3:
        raise StageConfigError(
            "hub:features.selfRegistration",
            "false before phase 3 (self-registration opens in phase 3)",
            True,
        )
    if features.self_registration and not features.waf:
        # Open sign-up without a WAF would loosen the perimeter; WAF may be on earlier (tightening).
        raise StageConfigError(
            "hub:features.waf", "true whenever selfRegistration is on", features.waf
        )
    if not features.waf:
        # The API faces the internet from phase 1: a web ACL (per-IP rate rule, managed
        # rule groups) guards it in every phase.
        raise StageConfigError("hub:features.waf", "true in every phase", features.waf)
    if features.community_care_intake and phase < 2:
        raise StageConfigError(
            "hub:features.communityCareIntake", "false in phase 1 (intake starts in phase 2)", True
        )
    return features


def _parse_capacity(raw: Any) -> Capacity:
    required = {"lambdaReservedConcurrency", "apiThrottleRateLimit", "apiThrottleBurstLimit"}
    entry = _mapping("hub:capacity", raw, required | {"ledgerTrails"}, required)
    capacity = Capacity(
        lambda_reserved_concurrency=_int(
            "hub:capacity.lambdaReservedConcurrency", entry["lambdaReservedConcurrency"], 1, 1000
        ),
        api_throttle_rate_limit=_number(
            "hub:capacity.apiThrottleRateLimit", entry["apiThrottleRateLimit"], 1, 10000
        ),
        api_throttle_burst_limit=_int(
            "hub:capacity.apiThrottleBurstLimit", entry["apiThrottleBurstLimit"], 1, 5000
        ),
        ledger_trails=_int("hub:capacity.ledgerTrails", entry.get("ledgerTrails", 1), 1, 64),
    )
    return capacity


def _parse_alarm(raw: Any) -> AlarmSubscription:
    entry = _mapping(
        "hub:alarmSubscription", raw, {"protocol", "endpoint"}, {"protocol", "endpoint"}
    )
    protocol = entry["protocol"]
    if protocol == "email":
        endpoint = _str(
            "hub:alarmSubscription.endpoint", entry["endpoint"], _EMAIL_RE, "an email address"
        )
        return AlarmSubscription("email", endpoint)
    if protocol == "https":
        return AlarmSubscription(
            "https", _https_url("hub:alarmSubscription.endpoint", entry["endpoint"])
        )
    raise StageConfigError("hub:alarmSubscription.protocol", "'email' or 'https'", protocol)


def parse_stage(stack: str, region: Any, raw: Mapping[str, Any]) -> Stage:
    """Parse the ``hub:`` namespace (keys without the prefix) of one stack.

    Args:
        stack: the stack name, e.g. ``phase1-specialist``.
        region: the value of ``aws:region``.
        raw: key -> value for the project's keys, as YAML types or Pulumi strings.

    Raises:
        RegionRefused: the region is not ap-east-1 (checked before anything else).
        StageConfigError: a key is missing, unknown or invalid; the message names it.
    """
    if region != REQUIRED_REGION:
        raise RegionRefused(region)
    unknown = sorted(set(raw) - set(KNOWN_KEYS))
    if unknown:
        raise StageConfigError(
            f"hub:{unknown[0]}", f"one of the documented keys {sorted(KNOWN_KEYS)}", "unknown key"
        )
    for key, required in KNOWN_KEYS.items():
        if required and raw.get(key) is None:
            raise StageConfigError(f"hub:{key}", "a value (see docs/stages.md)", missing=True)

    phase = _int("hub:phase", raw["phase"], 1, 3)
    expected_phase = STACK_PHASES.get(stack)
    if expected_phase is not None and expected_phase != phase:
        raise StageConfigError("hub:phase", f"{expected_phase} for stack '{stack}'", phase)

    cohort = _parse_cohort(raw["cohort"], phase)
    federation = _parse_federation(raw.get("federation") or [], phase, cohort)
    retention = _int(
        "hub:auditRetentionYears",
        raw["auditRetentionYears"],
        MIN_AUDIT_RETENTION_YEARS,
        MAX_AUDIT_RETENTION_YEARS,
    )
    callbacks = _list("hub:oauthCallbackUrls", raw["oauthCallbackUrls"])
    if not callbacks:
        raise StageConfigError("hub:oauthCallbackUrls", "at least one callback URL", callbacks)
    callback_urls = tuple(
        _https_url(f"hub:oauthCallbackUrls[{n}]", url, allow_loopback_http=True)
        for n, url in enumerate(callbacks)
    )
    bundle = raw.get("lambdaBundle") or "build/lambda.zip"
    features = _parse_features(raw["features"], phase)
    return Stage(
        intake_systems=_parse_intake_systems(raw.get("intakeSystems") or [], features, cohort),
        stack=stack,
        phase=phase,
        region=region,
        cohort=cohort,
        federation=federation,
        audit_retention_years=retention,
        capacity=_parse_capacity(raw["capacity"]),
        features=features,
        alarm_subscription=_parse_alarm(raw["alarmSubscription"]),
        oauth_callback_urls=callback_urls,
        lambda_bundle=_str("hub:lambdaBundle", bundle),
        web_bundle=_str("hub:webBundle", raw.get("webBundle") or "web/dist"),
    )
