"""Audit events: what the service records about every access decision and change."""
