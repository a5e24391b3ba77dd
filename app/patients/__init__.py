"""Patients across institutions: HKID validation and the patient index core.

:mod:`app.patients.hkid` validates and normalises Hong Kong Identity Card numbers;
:mod:`app.patients.index` is the pure index model (keyed references, link/unlink/correct
as an append-only event log). Storage and routes come with the wiring step.
"""
