"""The patient's sharing consent (eHRSS-style), as a pure model and as FHIR ``Consent``.

:mod:`app.consent.model` holds the consents and answers :func:`consent_allows`;
:mod:`app.consent.fhir` writes and reads them as FHIR R4B ``Consent`` resources. The
Cedar policies, storage and routes that use them come with the wiring step.
"""
