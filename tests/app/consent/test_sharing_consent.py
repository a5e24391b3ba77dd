"""Sharing consent: expiry, withdrawal, substitute decision makers, and FHIR Consent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.consent import Consent
from hypothesis import given
from hypothesis import strategies as st

from app.consent.fhir import InvalidConsentResource, consent_from_fhir, consent_to_fhir
from app.consent.model import (
    ALLOWED_RELATIONSHIPS,
    ConsentConflict,
    ConsentState,
    DecisionReason,
    InvalidConsent,
    SdmRelationship,
    SharingConsent,
    SubstituteBasis,
    SubstituteDecisionMaker,
    consent_allows,
    decide,
    give_consent,
    withdraw_consent,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PARENT = SubstituteDecisionMaker("hk1-sdm", SdmRelationship.PARENT, SubstituteBasis.MINOR)

times = st.integers(0, 10_000).map(lambda m: T0 + timedelta(minutes=m))
offsets = st.integers(1, 10_000).map(lambda m: timedelta(minutes=m))
sdms = st.sampled_from(
    [
        SubstituteDecisionMaker("hk1-s", relationship, basis)
        for basis, allowed in ALLOWED_RELATIONSHIPS.items()
        for relationship in allowed
    ]
)


@st.composite
def consents(draw: st.DrawFn) -> SharingConsent:
    given_at = draw(times)
    term = draw(st.one_of(st.none(), offsets))
    consent = give_consent(
        consent_id=draw(st.sampled_from(["c1", "c2"])),
        patient_ref=draw(st.sampled_from(["pt-1", "pt-2"])),
        institution=draw(st.sampled_from(["clinic-a", "hospital-b"])),
        given_at=given_at,
        valid_until=given_at + term if term else None,
        recorded_by="ZZ00001",
        given_by=draw(st.one_of(st.none(), sdms)),
    )
    if draw(st.booleans()):
        consent = withdraw_consent(
            consent,
            at=given_at + draw(st.integers(0, 10_000).map(lambda m: timedelta(minutes=m))),
            withdrawn_by="ZZ00002",
            via=draw(st.one_of(st.none(), sdms)),
        )
    return consent


def _expected_in_force(c: SharingConsent, at: datetime) -> bool:
    return (
        c.given_at <= at
        and (c.valid_until is None or at < c.valid_until)
        and (c.withdrawn_at is None or at < c.withdrawn_at)
    )


@given(consents(), times)
def test_in_force_is_exactly_the_documented_rule(consent: SharingConsent, at: datetime) -> None:
    assert consent.in_force(at) is _expected_in_force(consent, at)
    expected = consent.in_force(at)
    allowed = consent_allows([consent], consent.patient_ref, consent.institution, at)
    assert allowed is expected


@given(consents(), offsets)
def test_expiry_ends_an_unwithdrawn_consent(consent: SharingConsent, after: timedelta) -> None:
    if consent.valid_until is None:
        assert consent.state_at(consent.given_at + after) in (
            ConsentState.IN_FORCE,
            ConsentState.WITHDRAWN,
        )
    else:
        assert not consent.in_force(consent.valid_until)
        assert not consent.in_force(consent.valid_until + after)


@given(consents(), offsets, offsets)
def test_withdrawal_refuses_every_later_request_and_rewrites_no_earlier_answer(
    consent: SharingConsent, wait: timedelta, later: timedelta
) -> None:
    if consent.withdrawn_at is not None:
        return
    withdrawn_at = consent.given_at + wait
    withdrawn = withdraw_consent(consent, at=withdrawn_at, withdrawn_by="ZZ00002")
    assert not withdrawn.in_force(withdrawn_at)  # the very next request
    assert not withdrawn.in_force(withdrawn_at + later)
    assert withdrawn.state_at(withdrawn_at + later) is ConsentState.WITHDRAWN
    for moment in (consent.given_at, withdrawn_at - timedelta(microseconds=1)):
        assert withdrawn.in_force(moment) is consent.in_force(moment)
    with pytest.raises(ConsentConflict):
        withdraw_consent(withdrawn, at=withdrawn_at + later, withdrawn_by="ZZ00003")


@given(st.lists(consents(), max_size=6), times)
def test_allowed_iff_some_consent_for_that_patient_and_institution_is_in_force(
    book: list[SharingConsent], at: datetime
) -> None:
    for patient in ("pt-1", "pt-2"):
        for institution in ("clinic-a", "hospital-b", "clinic-z"):
            expected = any(
                c.patient_ref == patient
                and c.institution == institution
                and _expected_in_force(c, at)
                for c in book
            )
            decision = decide(book, patient, institution, at)
            assert decision.allowed is expected
            if not any(c.patient_ref == patient and c.institution == institution for c in book):
                assert decision.reason is DecisionReason.NO_CONSENT


def test_decision_reasons() -> None:
    one_year = give_consent(
        consent_id="c1",
        patient_ref="pt-1",
        institution="clinic-a",
        given_at=T0,
        valid_until=T0 + timedelta(days=365),
        recorded_by="ZZ00001",
    )
    assert decide([one_year], "pt-1", "clinic-a", T0 - timedelta(seconds=1)).reason is (
        DecisionReason.NOT_YET_VALID
    )
    assert decide([one_year], "pt-1", "clinic-a", T0).reason is DecisionReason.CONSENT_IN_FORCE
    assert decide([one_year], "pt-1", "clinic-a", T0 + timedelta(days=365)).reason is (
        DecisionReason.EXPIRED
    )
    withdrawn = withdraw_consent(one_year, at=T0 + timedelta(days=1), withdrawn_by="ZZ00001")
    decision = decide([withdrawn], "pt-1", "clinic-a", T0 + timedelta(days=2))
    assert (decision.allowed, decision.reason, decision.consent_id) == (
        False,
        DecisionReason.WITHDRAWN,
        "c1",
    )
    assert decide([withdrawn], "pt-1", "clinic-b", T0).reason is DecisionReason.NO_CONSENT


def test_substitute_decision_maker_consents_for_a_minor() -> None:
    consent = give_consent(
        consent_id="c1",
        patient_ref="pt-child",
        institution="clinic-a",
        given_at=T0,
        valid_until=None,
        recorded_by="ZZ00001",
        given_by=PARENT,
    )
    assert consent.indefinite and consent_allows([consent], "pt-child", "clinic-a", T0)
    family_for_minor = SubstituteDecisionMaker(
        "hk1-x", SdmRelationship.FAMILY_MEMBER, SubstituteBasis.MINOR
    )
    with pytest.raises(InvalidConsent):
        give_consent(
            consent_id="c2",
            patient_ref="pt-child",
            institution="clinic-a",
            given_at=T0,
            valid_until=None,
            recorded_by="ZZ00001",
            given_by=family_for_minor,
        )


@pytest.mark.parametrize(
    "change",
    [
        {"consent_id": ""},
        {"institution": "Clinic A"},
        {"given_at": T0.replace(tzinfo=None)},
        {"valid_until": T0},
        {"recorded_by": ""},
        {"given_by": SubstituteDecisionMaker("", SdmRelationship.PARENT, SubstituteBasis.MINOR)},
    ],
)
def test_invalid_consents_are_refused(change: dict[str, object]) -> None:
    arguments: dict[str, object] = {
        "consent_id": "c1",
        "patient_ref": "pt-1",
        "institution": "clinic-a",
        "given_at": T0,
        "valid_until": None,
        "recorded_by": "ZZ00001",
    } | change
    with pytest.raises(InvalidConsent) as caught:
        give_consent(**arguments)  # type: ignore[arg-type]
    assert caught.value.status_code == 422


def test_withdrawal_cannot_predate_the_consent() -> None:
    consent = give_consent(
        consent_id="c1",
        patient_ref="pt-1",
        institution="clinic-a",
        given_at=T0,
        valid_until=None,
        recorded_by="ZZ00001",
    )
    with pytest.raises(InvalidConsent):
        withdraw_consent(consent, at=T0 - timedelta(days=1), withdrawn_by="ZZ00001")


# -- FHIR Consent -----------------------------------------------------------------------------


@given(consents())
def test_fhir_consent_is_valid_r4b_and_round_trips(consent: SharingConsent) -> None:
    resource = consent_to_fhir(consent)
    model = Consent.model_validate(resource)
    assert model.status == ("inactive" if consent.withdrawn_at else "active")
    assert consent_from_fhir(resource) == consent


def test_fhir_consent_shape() -> None:
    consent = give_consent(
        consent_id="c1",
        patient_ref="pt-1",
        institution="clinic-a",
        given_at=T0,
        valid_until=T0 + timedelta(days=365),
        recorded_by="ZZ00001",
        given_by=PARENT,
    )
    resource = consent_to_fhir(consent)
    assert resource["provision"]["type"] == "permit"
    assert resource["provision"]["period"] == {
        "start": "2026-01-01T00:00:00+00:00",
        "end": "2027-01-01T00:00:00+00:00",
    }
    assert resource["provision"]["actor"][0]["reference"]["identifier"]["value"] == "clinic-a"
    assert resource["performer"][0]["type"] == "RelatedPerson"
    basis = next(e for e in resource["extension"] if e["url"].endswith("substitute-decision-basis"))
    assert {e["url"]: e["valueCode"] for e in basis["extension"]} == {
        "basis": "minor",
        "relationship": "parent",
    }


def test_a_foreign_consent_resource_is_refused() -> None:
    with pytest.raises(InvalidConsentResource):
        consent_from_fhir({"resourceType": "Consent", "status": "active"})
