"""Pilot metrics computed from the audit ledger's entries, never from mutable tables."""
