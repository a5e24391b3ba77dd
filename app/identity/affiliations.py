"""Who an account is at the hub, decided from authoritative data only.

Nothing a user can write decides their institution, registration number or roles. The
decision comes from the ``institutions`` table (admitted institutions, affiliations kept
by institution admins, account enrolments, identity-provider mappings) and, for a
federated account, from what its identity provider asserted at sign-in (attributes the
provider's mapping writes; the only app client that may write them issues tokens that
cannot call ``UpdateUserAttributes``). :func:`resolve_enrolment` is that decision, one
pure function shared by the pre-token-generation trigger (``app.identity.triggers``) and
the service (``app.identity.principal``), so a token's claims and the service's
per-request check cannot disagree about the rules.

The table (``pk``, ``sk``, both strings) holds every phase's institutions in one place:

=================  ==========================  =====================  ====================
item               pk                          sk                     holds
=================  ==========================  =====================  ====================
institution        ``INSTITUTION``             ``<institution id>``   name, type, phase,
                                                                      status, provider,
                                                                      hospital code
affiliation        ``AFFILIATION#<inst id>``   ``<member>``           roles, status
account            ``ACCOUNT#<sub>``           ``ACCOUNT``            member, institution,
                                                                      status (native only)
number binding     ``REGNO#<reg no>``          ``ACCOUNT``            the one native account
                                                                      bound to the number
provider           ``PROVIDER#<name>``         ``PROVIDER``           institution, or claim
                                                                      + group roles
hospital code      ``PROVIDER#<name>``         ``CODE#<code>``        institution
pending review     ``PENDING``                 ``<registration id>``  a self-registration
                                                                      awaiting its reviewer
=================  ==========================  =====================  ====================

A *member* is a registration number for a practitioner (``M12345``) or ``sub:<Cognito
sub>`` for staff without one (institution admins, auditors, platform admins).

Resolution, on every request and at every token issue (strongly consistent reads):

- **native account** (signed in with a password): its account item names the member and
  the institution; the account must be active (a self-registration stays ``pending``
  until approved), the institution admitted, and the member's affiliation there active;
  roles are the affiliation's.
- **federated account**: the provider's mapping names the institution, or, for a
  provider covering many hospitals, maps the hospital code the provider asserted to an
  institution; the member is the registration number the provider asserted; the
  institution must be admitted; an affiliation there that is not active refuses (an
  institution admin's removal wins over the provider); roles are the provider's group
  claim mapped through the provider's ``group_roles`` (clinical roles only) together
  with the affiliation's.

Every refusal is an :class:`EnrolmentRefused` with a code and a sentence a person can act
on; neither carries personal data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from app.dynamo import deserialize, query_partition
from app.identity.registration import RegistrationRefused, normalise_reg_no

ROLES = ("doctor", "specialist", "institution_admin", "auditor", "platform_admin")
CLINICAL_ROLES = frozenset({"doctor", "specialist"})
# An identity provider vouches for its clinicians; administrative roles are the hub's to give.
IDP_GRANTABLE_ROLES = CLINICAL_ROLES
STAFF_MEMBER_PREFIX = "sub:"
HOSPITAL_CODE_CLAIM = "hospital_code"

INSTITUTION_PARTITION = "INSTITUTION"
PENDING_PARTITION = "PENDING"
# A layer's switch (infra/components/layer_switch.py): pk LAYER, sk the layer's stack.
LAYER_PARTITION = "LAYER"


class InstitutionType(StrEnum):
    SPECIALIST_ALLIANCE = "specialist_alliance"
    HA_HOSPITAL = "ha_hospital"
    HA_CLUSTER = "ha_cluster"
    PRIVATE_CLINIC = "private_clinic"


# The phase in which each kind of institution is first admitted. Scopes are cumulative.
FIRST_PHASE_FOR_TYPE: dict[InstitutionType, int] = {
    InstitutionType.SPECIALIST_ALLIANCE: 1,
    InstitutionType.HA_HOSPITAL: 2,
    InstitutionType.HA_CLUSTER: 2,
    InstitutionType.PRIVATE_CLINIC: 3,
}


class InstitutionStatus(StrEnum):
    ADMITTED = "admitted"
    SUSPENDED = "suspended"
    REMOVED = "removed"


class AffiliationStatus(StrEnum):
    ACTIVE = "active"
    REMOVED = "removed"


class AccountStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    REJECTED = "rejected"


# -- keys ---------------------------------------------------------------------------------


def institution_key(institution: str) -> dict[str, str]:
    return {"pk": INSTITUTION_PARTITION, "sk": institution}


def affiliation_key(institution: str, member: str) -> dict[str, str]:
    return {"pk": f"AFFILIATION#{institution}", "sk": member}


def account_key(sub: str) -> dict[str, str]:
    return {"pk": f"ACCOUNT#{sub}", "sk": "ACCOUNT"}


def reg_no_key(reg_no: str) -> dict[str, str]:
    return {"pk": f"REGNO#{reg_no}", "sk": "ACCOUNT"}


def provider_key(provider: str) -> dict[str, str]:
    return {"pk": f"PROVIDER#{provider}", "sk": "PROVIDER"}


def intake_client_key(client_id: str) -> dict[str, str]:
    return {"pk": f"INTAKECLIENT#{client_id}", "sk": "INTAKECLIENT"}


def hospital_key(provider: str, code: str) -> dict[str, str]:
    return {"pk": f"PROVIDER#{provider}", "sk": f"CODE#{code}"}


def pending_key(registration_id: str) -> dict[str, str]:
    return {"pk": PENDING_PARTITION, "sk": registration_id}


def staff_member(sub: str) -> str:
    return f"{STAFF_MEMBER_PREFIX}{sub}"


def is_practitioner(member: str) -> bool:
    return not member.startswith(STAFF_MEMBER_PREFIX)


# -- records ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Institution:
    id: str
    name: str
    type: InstitutionType
    phase: int
    status: InstitutionStatus
    provider: str | None = None
    hospital_code: str | None = None

    @property
    def admitted(self) -> bool:
        return self.status is InstitutionStatus.ADMITTED

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Institution:
        return cls(
            id=str(item["sk"]),
            name=str(item.get("name", "")),
            type=InstitutionType(str(item["type"])),
            phase=int(item.get("phase", 1)),
            status=_status(InstitutionStatus, item.get("status"), InstitutionStatus.REMOVED),
            provider=str(item["provider"]) if item.get("provider") else None,
            hospital_code=str(item["hospital_code"]) if item.get("hospital_code") else None,
        )


@dataclass(frozen=True)
class Affiliation:
    institution: str
    member: str
    roles: tuple[str, ...]
    status: AffiliationStatus

    @property
    def active(self) -> bool:
        return self.status is AffiliationStatus.ACTIVE

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Affiliation:
        return cls(
            institution=str(item["pk"]).removeprefix("AFFILIATION#"),
            member=str(item["sk"]),
            roles=tuple(sorted(str(r) for r in item.get("roles", []) if str(r) in ROLES)),
            status=_status(AffiliationStatus, item.get("status"), AffiliationStatus.REMOVED),
        )


@dataclass(frozen=True)
class Account:
    """A native account's enrolment: who it stands for, and where."""

    sub: str
    member: str
    institution: str
    status: AccountStatus
    registration_id: str | None = None
    new_institution_name: str | None = None
    submitted_at: str | None = None
    decided_at: str | None = None

    @property
    def reg_no(self) -> str | None:
        return self.member if is_practitioner(self.member) else None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Account:
        return cls(
            sub=str(item["pk"]).removeprefix("ACCOUNT#"),
            member=str(item["member"]),
            institution=str(item["institution"]),
            status=_status(AccountStatus, item.get("status"), AccountStatus.REJECTED),
            registration_id=_opt(item.get("registration_id")),
            new_institution_name=_opt(item.get("new_institution_name")),
            submitted_at=_opt(item.get("submitted_at")),
            decided_at=_opt(item.get("decided_at")),
        )


@dataclass(frozen=True)
class IntakeClient:
    """A clinic management system's app client (client-credentials grant) and the one
    institution whose records it submits (community-care intake, phase 2): data, set
    through the operator channel, never taken from the token or the message."""

    client_id: str
    institution: str
    system: str

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> IntakeClient:
        return cls(
            client_id=str(item["pk"]).removeprefix("INTAKECLIENT#"),
            institution=str(item["institution"]),
            system=str(item.get("system", "")),
        )


@dataclass(frozen=True)
class ProviderMapping:
    """How one identity provider's users map onto the hub.

    Exactly one of ``institution`` (the provider serves one institution) and ``claim``
    (the provider serves many; the named claim, a hospital code, picks the institution
    through the provider's code items) is set. ``group_roles`` maps the provider's group
    claim values to hub roles; empty means roles come from affiliations only.
    """

    name: str
    institution: str | None = None
    claim: str | None = None
    group_roles: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ProviderMapping:
        roles = item.get("group_roles") or {}
        return cls(
            name=str(item["pk"]).removeprefix("PROVIDER#"),
            institution=_opt(item.get("institution")),
            claim=_opt(item.get("claim")),
            group_roles={
                str(k): str(v) for k, v in dict(roles).items() if str(v) in IDP_GRANTABLE_ROLES
            },
        )

    def required_claims(self) -> tuple[str, ...]:
        """What the provider must release for this mapping (pool attribute suffixes)."""
        needed = ["reg_no"]
        if self.claim:
            needed.append(self.claim)
        if self.group_roles:
            needed.append("groups")
        return tuple(needed)


def _opt(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _status(kind: Any, raw: Any, fallback: Any) -> Any:
    try:
        return kind(str(raw))
    except ValueError:
        # An unreadable status is never a granting one: fail closed.
        return fallback


# -- resolution ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SignIn:
    """What the user pool says about an account (never what the user wrote).

    ``provider`` is the federated identity provider, None for a native (password)
    account. ``asserted`` holds what that provider asserted at the last sign-in:
    ``reg_no``, ``hospital_code``, ``groups`` (empty for native accounts).
    """

    sub: str
    username: str
    provider: str | None = None
    asserted: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Enrolment:
    institution: Institution
    member: str
    roles: frozenset[str]
    provider: str | None = None

    @property
    def reg_no(self) -> str | None:
        return self.member if is_practitioner(self.member) else None


REFUSALS: dict[str, str] = {
    "account_not_enrolled": "this account is not enrolled at any institution; apply for "
    "registration or ask an institution admin",
    "registration_pending": "your registration awaits approval by the claimed "
    "institution's admin; you have no access until then",
    "registration_rejected": "your registration was rejected",
    "provider_not_mapped": "your identity provider is not mapped to any institution "
    "admitted to the hub",
    "hospital_code_missing": "your identity provider did not release the hospital code "
    "the hub needs to place you",
    "hospital_not_mapped": "your identity provider's hospital code maps to no institution "
    "admitted to the hub",
    "registration_number_missing": "your identity provider did not release a Medical "
    "Council registration number",
    "registration_number_malformed": "the registration number is not a Medical Council "
    "registration number",
    "institution_not_admitted": "your institution is not admitted to the hub",
    "affiliation_missing": "you have no affiliation with this institution; ask its admin",
    "affiliation_removed": "your affiliation with this institution was removed",
    "no_role": "you hold no role at this institution",
    "self_registration_closed": "self-registration is not open: the hub's phase 3 "
    "layer is not deployed",
    "granting_attribute_written": "a sign-up may not set a registration number, "
    "institution, specialty or identity-provider attribute; apply through the hub instead",
}


class EnrolmentRefused(Exception):
    """The account may not act at the hub. ``reason`` is a code, ``message`` a sentence
    (both safe to log and return); ``institution`` the institution concerned, if known."""

    def __init__(self, reason: str, institution: str | None = None):
        self.reason = reason
        self.institution = institution
        self.message = REFUSALS.get(reason, reason)
        super().__init__(f"{reason}: {self.message}")


class AffiliationLookup(Protocol):
    def account(self, sub: str) -> Account | None: ...

    def switches(self) -> HubSwitches: ...

    def provider(self, name: str, code: str | None) -> tuple[ProviderMapping | None, str | None]:
        """(the provider's mapping, the institution ``code`` maps to under it)."""
        ...

    def standing(
        self, institution: str, member: str
    ) -> tuple[Institution | None, Affiliation | None]: ...


def parse_groups(raw: str | None) -> list[str]:
    """A group claim as the pool stores it: a JSON array (OIDC), ``[a, b]`` (multi-valued
    SAML) or a single value."""
    if not raw:
        return []
    text = raw.strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = text.strip("[]").split(",")
    if isinstance(parsed, str):
        parsed = [parsed]
    if not isinstance(parsed, list):
        return []
    return [str(g).strip().strip('"') for g in parsed if str(g).strip().strip('"')]


def _asserted_reg_no(raw: object) -> str:
    try:
        return normalise_reg_no(raw)
    except RegistrationRefused as refused:
        raise EnrolmentRefused(refused.reason) from refused


def resolve_enrolment(sign_in: SignIn, lookup: AffiliationLookup) -> Enrolment:
    """The institution, member and roles ``sign_in`` stands for (see the module text).

    Raises:
        EnrolmentRefused: with one of the codes in :data:`REFUSALS`.
    """
    if sign_in.provider is None:
        return _resolve_native(sign_in, lookup)
    return _resolve_federated(sign_in, sign_in.provider, lookup)


def _resolve_native(sign_in: SignIn, lookup: AffiliationLookup) -> Enrolment:
    account = lookup.account(sign_in.sub)
    if account is None:
        raise EnrolmentRefused("account_not_enrolled")
    if account.status is AccountStatus.PENDING:
        raise EnrolmentRefused("registration_pending")
    if account.status is not AccountStatus.ACTIVE:
        raise EnrolmentRefused("registration_rejected")
    institution, affiliation = _admitted(lookup, account.institution, account.member)
    if affiliation is None:
        raise EnrolmentRefused("affiliation_missing", institution.id)
    roles = frozenset(affiliation.roles)
    if not roles:
        raise EnrolmentRefused("no_role", institution.id)
    return Enrolment(institution, account.member, roles)


def _resolve_federated(sign_in: SignIn, provider: str, lookup: AffiliationLookup) -> Enrolment:
    code = (sign_in.asserted.get(HOSPITAL_CODE_CLAIM) or "").strip().upper() or None
    mapping, mapped = lookup.provider(provider, code)
    if mapping is None:
        raise EnrolmentRefused("provider_not_mapped")
    if mapping.institution:
        target = mapping.institution
    else:
        if code is None:
            raise EnrolmentRefused("hospital_code_missing")
        if mapped is None:
            raise EnrolmentRefused("hospital_not_mapped")
        target = mapped
    reg_no = _asserted_reg_no(sign_in.asserted.get("reg_no"))
    institution, affiliation = _admitted(lookup, target, reg_no)
    roles = {
        mapping.group_roles[g]
        for g in parse_groups(sign_in.asserted.get("groups"))
        if mapping.group_roles.get(g) in IDP_GRANTABLE_ROLES
    }
    if affiliation is not None:
        roles |= set(affiliation.roles)
    if not roles:
        raise EnrolmentRefused("no_role", institution.id)
    return Enrolment(institution, reg_no, frozenset(roles), provider)


def _admitted(
    lookup: AffiliationLookup, institution_id: str, member: str
) -> tuple[Institution, Affiliation | None]:
    """The institution, admitted, and the member's affiliation there unless removed."""
    institution, affiliation = lookup.standing(institution_id, member)
    if institution is None or not institution.admitted:
        raise EnrolmentRefused("institution_not_admitted", institution_id)
    if affiliation is not None and not affiliation.active:
        raise EnrolmentRefused("affiliation_removed", institution_id)
    return institution, affiliation


@dataclass(frozen=True)
class HubLayer:
    """A layer's switch as its deploy wrote it: what its phase turns on in the one hub.

    The item is the layer's (its deploy writes it, its destroy deletes it), so whatever a
    phase turns on here is off again once its layer is removed.
    """

    stack: str
    phase: int
    client_ids: frozenset[str] = frozenset()
    federation: bool = False
    self_registration: bool = False
    community_care_intake: bool = False
    # The clinic systems' app clients this layer declared (infra/components/intake.py).
    intake_client_ids: frozenset[str] = frozenset()

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> HubLayer:
        clients = item.get("clientIds") or []
        intake_clients = item.get("intakeClientIds") or []
        return cls(
            stack=str(item["sk"]),
            phase=int(item.get("phase", 1)),
            client_ids=frozenset(str(c) for c in clients if c),
            federation=bool(item.get("federation", False)),
            self_registration=bool(item.get("selfRegistration", False)),
            community_care_intake=bool(item.get("communityCareIntake", False)),
            intake_client_ids=frozenset(str(c) for c in intake_clients if c),
        )


@dataclass(frozen=True)
class HubSwitches:
    """The layers switched on now, read together (one strongly consistent query)."""

    layers: tuple[HubLayer, ...] = ()

    @property
    def client_ids(self) -> frozenset[str]:
        """The app clients the switched-on layers declared (e.g. phase 2's federated one)."""
        return frozenset(c for layer in self.layers if layer.federation for c in layer.client_ids)

    @property
    def self_registration(self) -> bool:
        return any(layer.self_registration for layer in self.layers)

    @property
    def intake_client_ids(self) -> frozenset[str]:
        """The clinic systems' app clients of the switched-on layers that turn
        community-care intake on: a client submits only while its layer stands."""
        return frozenset(
            c
            for layer in self.layers
            if layer.community_care_intake
            for c in layer.intake_client_ids
        )

    def phase(self, core_phase: int) -> int:
        """The hub's phase: the core's, or the highest layer switched on."""
        return max([core_phase, *(layer.phase for layer in self.layers)])


# -- the table, read side -----------------------------------------------------------------


class DynamoAffiliations:
    """The ``institutions`` table, read-only and strongly consistent: what the trigger
    and the per-request check need (:class:`AffiliationLookup`), nothing cached."""

    def __init__(self, client: Any, table_name: str):
        self._client = client
        self.table_name = table_name

    def _get(self, key: Mapping[str, str]) -> dict[str, Any] | None:
        item = self._client.get_item(
            TableName=self.table_name,
            Key={k: {"S": v} for k, v in key.items()},
            ConsistentRead=True,
        ).get("Item")
        return deserialize(item) if item else None

    def _batch(self, keys: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
        """Every item of ``keys`` that exists, read in one strongly consistent batch
        (unprocessed keys are asked again until none is left)."""
        request: dict[str, Any] = {
            self.table_name: {
                "Keys": [{k: {"S": v} for k, v in key.items()} for key in keys],
                "ConsistentRead": True,
            }
        }
        found: list[dict[str, Any]] = []
        while request:
            answer = self._client.batch_get_item(RequestItems=request)
            found.extend(
                deserialize(i) for i in answer.get("Responses", {}).get(self.table_name, [])
            )
            request = answer.get("UnprocessedKeys") or {}
        return found

    def account(self, sub: str) -> Account | None:
        item = self._get(account_key(sub))
        return Account.from_item(item) if item else None

    def institution(self, institution: str) -> Institution | None:
        item = self._get(institution_key(institution))
        return Institution.from_item(item) if item else None

    def intake_client(self, client_id: str) -> IntakeClient | None:
        """The submitting system an app client is mapped to, read now (None: unknown)."""
        item = self._get(intake_client_key(client_id))
        return IntakeClient.from_item(item) if item else None

    def provider(self, name: str, code: str | None) -> tuple[ProviderMapping | None, str | None]:
        keys = [provider_key(name)] + ([hospital_key(name, code)] if code else [])
        mapping: ProviderMapping | None = None
        mapped: str | None = None
        for item in self._batch(keys):
            if item["sk"] == "PROVIDER":
                mapping = ProviderMapping.from_item(item)
            elif item.get("institution"):
                mapped = str(item["institution"])
        return mapping, mapped

    def standing(
        self, institution: str, member: str
    ) -> tuple[Institution | None, Affiliation | None]:
        found: Institution | None = None
        affiliation: Affiliation | None = None
        for item in self._batch(
            [institution_key(institution), affiliation_key(institution, member)]
        ):
            if item["pk"] == INSTITUTION_PARTITION:
                found = Institution.from_item(item)
            else:
                affiliation = Affiliation.from_item(item)
        return found, affiliation

    def admitted(self, institution: str) -> bool:
        """Whether ``institution`` is admitted now (strongly consistent, uncached)."""
        found = self.institution(institution)
        return found is not None and found.admitted

    def switches(self) -> HubSwitches:
        """The layers switched on now: every ``LAYER`` item, strongly consistent, all
        pages (a handful of items: one per layer deployed)."""
        items = query_partition(self._client, self.table_name, LAYER_PARTITION)
        return HubSwitches(tuple(HubLayer.from_item(i) for i in items))

    def institutions(self, ids: Iterable[str]) -> dict[str, Institution]:
        """The institutions among ``ids`` that exist, by id (one batch per 100)."""
        wanted = sorted(set(ids))
        out: dict[str, Institution] = {}
        for start in range(0, len(wanted), 100):
            for item in self._batch([institution_key(i) for i in wanted[start : start + 100]]):
                institution = Institution.from_item(item)
                out[institution.id] = institution
        return out


class MappingAffiliations:
    """Affiliation data held in memory (tests, demos): the same answers as the table."""

    def __init__(
        self,
        *,
        institutions: Iterable[Institution] = (),
        affiliations: Iterable[Affiliation] = (),
        accounts: Iterable[Account] = (),
        providers: Iterable[ProviderMapping] = (),
        hospital_codes: Mapping[tuple[str, str], str] | None = None,
        layers: Iterable[HubLayer] = (),
    ):
        self.institutions = {i.id: i for i in institutions}
        self.affiliations = {(a.institution, a.member): a for a in affiliations}
        self.accounts = {a.sub: a for a in accounts}
        self.providers = {p.name: p for p in providers}
        self.hospital_codes = dict(hospital_codes or {})
        self.layers = {layer.stack: layer for layer in layers}

    def switches(self) -> HubSwitches:
        return HubSwitches(tuple(self.layers[k] for k in sorted(self.layers)))

    def account(self, sub: str) -> Account | None:
        return self.accounts.get(sub)

    def provider(self, name: str, code: str | None) -> tuple[ProviderMapping | None, str | None]:
        mapped = self.hospital_codes.get((name, code)) if code else None
        return self.providers.get(name), mapped

    def standing(
        self, institution: str, member: str
    ) -> tuple[Institution | None, Affiliation | None]:
        return self.institutions.get(institution), self.affiliations.get((institution, member))
