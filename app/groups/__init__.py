"""Consultation groups: a patient's care team across institutions, with membership history."""
