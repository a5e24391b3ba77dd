"""The hub's names on its homeserver, and the namespaces that reserve them.

Guarantees:

- a doctor's Matrix account is ``@doc-<reg no, lower case>:<server>``, derived only
  from a valid registration number (``app.identity.registration.REG_NO_PATTERN``), so
  one registration number has one account and no other string maps onto it;
- a consultation group's room alias is ``#grp-<group id>:<server>``;
- the hub's own device posts record cards as ``@hub-cards:<server>``: a user of the
  application service's namespace, not its sender (the homeserver does not let the
  sender ``/sync``, and an end-to-end encrypted device must);
- the application service's exclusive namespaces (:meth:`MatrixNames.user_namespace`,
  :meth:`MatrixNames.alias_namespace`) match exactly these forms, anchored, so the
  homeserver refuses anyone else who tries to register such an account or alias.

Matrix user ids are case-sensitive and their localparts must be lower case (client-server
API, "User Identifiers"), hence the lower-cased registration number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.identity.registration import REG_NO_PATTERN

DOCTOR_PREFIX = "doc-"
GROUP_PREFIX = "grp-"
HUB_SENDER_LOCALPART = "hub"
CARDS_LOCALPART = "hub-cards"

# A DNS name (no port: the hub's homeserver is always reached through its own base URL).
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_SERVER_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
# The hub's group ids are uuid4 hex; anything lower-case and alias-safe is accepted.
_GROUP_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_DOCTOR_LOCALPART = r"[a-z]{1,2}[0-9]{4,6}"


class InvalidMatrixName(ValueError):
    """A registration number, group id or server name that has no Matrix name."""


@dataclass(frozen=True)
class MatrixNames:
    """The Matrix identifiers of one hub deployment (one homeserver ``server_name``)."""

    server_name: str

    def __post_init__(self) -> None:
        if not _SERVER_NAME.fullmatch(self.server_name):
            raise InvalidMatrixName(f"not a lower-case DNS server name: {self.server_name!r}")

    @property
    def hub_user_id(self) -> str:
        """The application service's own user (``sender_localpart``): the rooms' creator."""
        return f"@{HUB_SENDER_LOCALPART}:{self.server_name}"

    @property
    def cards_user_id(self) -> str:
        """The hub's record-card device's user (a room member, like the hub itself)."""
        return f"@{CARDS_LOCALPART}:{self.server_name}"

    def doctor_user_id(self, reg_no: str) -> str:
        if not REG_NO_PATTERN.fullmatch(reg_no):
            raise InvalidMatrixName("not a registration number")
        return f"@{self.doctor_localpart(reg_no)}:{self.server_name}"

    @staticmethod
    def doctor_localpart(reg_no: str) -> str:
        if not REG_NO_PATTERN.fullmatch(reg_no):
            raise InvalidMatrixName("not a registration number")
        return DOCTOR_PREFIX + reg_no.lower()

    def reg_no_of(self, user_id: str) -> str | None:
        """The registration number behind a hub doctor account, or None for any other user."""
        match = re.fullmatch(
            rf"@{re.escape(DOCTOR_PREFIX)}({_DOCTOR_LOCALPART}):{re.escape(self.server_name)}",
            user_id,
        )
        return match.group(1).upper() if match else None

    def group_alias(self, group_id: str) -> str:
        return f"#{self.group_alias_localpart(group_id)}:{self.server_name}"

    @staticmethod
    def group_alias_localpart(group_id: str) -> str:
        if not _GROUP_ID.fullmatch(group_id):
            raise InvalidMatrixName("not a consultation group id")
        return GROUP_PREFIX + group_id

    def user_namespace(self) -> str:
        """Regex of the doctor accounts the application service alone may create."""
        return rf"^@{re.escape(DOCTOR_PREFIX)}{_DOCTOR_LOCALPART}:{re.escape(self.server_name)}$"

    def cards_namespace(self) -> str:
        """Regex of the hub's record-card user, the application service's alone."""
        return rf"^@{re.escape(CARDS_LOCALPART)}:{re.escape(self.server_name)}$"

    def alias_namespace(self) -> str:
        """Regex of the group room aliases the application service alone may create."""
        server = re.escape(self.server_name)
        return rf"^#{re.escape(GROUP_PREFIX)}[a-z0-9][a-z0-9-]{{0,63}}:{server}$"
