"""Hong Kong Identity Card numbers: normalisation and check-digit validation.

An HKID is one or two capital letters, six digits and a check digit (``0``-``9`` or ``A``),
printed with the check digit in brackets: ``A123456(3)``, ``XA123456(A)``. This module
accepts the usual ways people type it (lower case, spaces, with or without the brackets)
and gives back one canonical, compact form (``A1234563``).

The check digit (mod 11, weights 9 to 2)::

    value(space) = 36, value(A..Z) = 10..35, value(0..9) = 0..9
    a one-letter prefix is read with a leading space, so there are always 8 characters
    s = sum(value(c_i) * w_i for c_i, w_i in zip(chars, (9, 8, 7, 6, 5, 4, 3, 2)))
    check = (11 - s % 11) % 11, written "A" when it is 10

What it detects, and its known limits (both shown by the property tests):

- every change of one digit, and every change of the check digit itself;
- a change of one letter only when the two letters' values differ modulo 11: A, L and W
  (10, 21, 32) are interchangeable, as are B/M/X, C/N/Y, D/O/Z, E/P, F/Q, G/R, H/S, I/T,
  J/U and K/V; and the leading space (36) is congruent to E and P, so a one-letter
  prefix ``A`` and a two-letter prefix ``EA`` or ``PA`` carry the same check digit;
- the transposition of two adjacent digits that differ (their weights differ by one);
- nothing about whether the number was ever issued: a valid check digit says the number
  is well formed, not that it belongs to anyone (prefixes are not restricted to the ones
  the Immigration Department uses, which change over time).

Guarantees: :class:`Hkid` never shows its value in ``repr`` or ``str`` (the value is
patient identity; see :mod:`app.patients.index` for how the hub refers to it), and
:class:`InvalidHkid` messages are fixed strings that never echo the input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from app.errors import HubError

WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2)
SPACE_VALUE = 36

# Accepted input after removing spaces and upper-casing: prefix, digits, check digit
# either bare or in one pair of brackets.
_HKID = re.compile(r"([A-Z]{1,2})([0-9]{6})(?:([0-9A])|\(([0-9A])\))")
_WHITESPACE = re.compile(r"[\s\u3000]+")


class InvalidHkid(HubError):
    """Not an HKID (wrong shape or check digit). The message never contains the input."""

    status_code = 422
    code = "invalid_hkid"

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(f"HKID is not valid: {reason}.")


FORMAT = "expected one or two letters, six digits and a check digit (0-9 or A)"
CHECK_DIGIT = "the check digit does not match"


@dataclass(frozen=True)
class Hkid:
    """A validated HKID in canonical compact form (``value``: ``A1234563``)."""

    value: str = field(repr=False)

    @property
    def prefix(self) -> str:
        return self.value[:-7]

    @property
    def digits(self) -> str:
        return self.value[-7:-1]

    @property
    def check_digit(self) -> str:
        return self.value[-1]

    def display(self) -> str:
        """The printed form, ``A123456(3)`` (for documents, never for logs)."""
        return f"{self.value[:-1]}({self.value[-1]})"

    def __str__(self) -> str:
        return "Hkid(***)"


def char_value(char: str) -> int:
    """The check-digit value of one character: space 36, A-Z 10-35, 0-9 their value."""
    if char == " ":
        return SPACE_VALUE
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    if "0" <= char <= "9":
        return ord(char) - ord("0")
    raise ValueError("not an HKID character")


def compute_check_digit(prefix: str, digits: str) -> str:
    """The check digit for a prefix (one or two capital letters) and six digits.

    Raises:
        ValueError: the prefix or digits are not of that shape.
    """
    if not re.fullmatch(r"[A-Z]{1,2}", prefix) or not re.fullmatch(r"[0-9]{6}", digits):
        raise ValueError("an HKID body is one or two capital letters and six digits")
    body = prefix.rjust(2) + digits
    total = sum(char_value(c) * w for c, w in zip(body, WEIGHTS, strict=True))
    check = (11 - total % 11) % 11
    return "A" if check == 10 else str(check)


def normalise_hkid(text: str) -> str:
    """Upper-case, remove spaces, and return the compact form if the shape is right.

    Only the shape is checked here; :func:`parse_hkid` checks the digit too.

    Raises:
        InvalidHkid: not of the HKID shape.
    """
    if not isinstance(text, str) or len(text) > 32:
        raise InvalidHkid(FORMAT)
    compact = _WHITESPACE.sub("", text)
    if not compact.isascii():
        # Before upper-casing: the dotless i upper-cases to "I" and sharp s to "SS".
        raise InvalidHkid(FORMAT)
    compact = compact.upper()
    match = _HKID.fullmatch(compact)
    if match is None:
        raise InvalidHkid(FORMAT)
    prefix, digits, bare, bracketed = match.groups()
    return prefix + digits + (bare or bracketed)


def parse_hkid(text: str) -> Hkid:
    """Validate and normalise an HKID as typed (``a123456 (3)`` -> ``A1234563``).

    Raises:
        InvalidHkid: wrong shape, or the check digit does not match.
    """
    compact = normalise_hkid(text)
    if compute_check_digit(compact[:-7], compact[-7:-1]) != compact[-1]:
        raise InvalidHkid(CHECK_DIGIT)
    return Hkid(compact)


def is_valid_hkid(text: str) -> bool:
    """Whether ``text`` is a well-formed HKID with a matching check digit."""
    try:
        parse_hkid(text)
    except InvalidHkid:
        return False
    return True
