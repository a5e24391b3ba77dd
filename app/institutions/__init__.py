"""Institutions as data: admission, affiliations and self-registration with proof."""
