"""The hub's application service registration: how the homeserver knows the hub.

The registration file (Matrix application service API, "Registration") names:

- ``as_token``: the secret the hub presents to the homeserver (it can then create and
  act for accounts in its namespaces, and is not rate limited);
- ``hs_token``: the secret the homeserver presents when it pushes transactions to the
  hub (checked by :mod:`app.messaging.router`);
- ``url``: where the homeserver pushes them;
- exclusive namespaces for the doctor accounts (``@doc-<reg no>:<server>``), the hub's
  record-card user (``@hub-cards:<server>``) and group room aliases
  (``#grp-<group id>:<server>``): the homeserver refuses anyone else who tries to create
  such an account or alias (``M_EXCLUSIVE``);
- ``sender_localpart: hub``: the hub's own user, creator and only administrator of the
  group rooms.

Guarantees: both tokens are random and at least 32 URL-safe characters, and differ; the
file is written readable by its owner only.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from app.messaging.identifiers import HUB_SENDER_LOCALPART, MatrixNames

APPSERVICE_ID = "hub"
_TOKEN = re.compile(r"^[A-Za-z0-9_\-]{32,}$")


class InvalidRegistration(ValueError):
    """A registration that would let someone else act as the hub or the homeserver."""


@dataclass(frozen=True)
class AppServiceRegistration:
    names: MatrixNames
    url: str
    as_token: str
    hs_token: str
    id: str = APPSERVICE_ID

    def __post_init__(self) -> None:
        for name in ("as_token", "hs_token"):
            if not _TOKEN.fullmatch(getattr(self, name)):
                raise InvalidRegistration(f"{name} must be >= 32 random URL-safe characters")
        if hmac.compare_digest(self.as_token, self.hs_token):
            raise InvalidRegistration("as_token and hs_token must differ")
        if not self.url.startswith(("http://", "https://")):
            raise InvalidRegistration("url must be an http(s) URL")

    @classmethod
    def generate(cls, names: MatrixNames, url: str) -> AppServiceRegistration:
        """A registration with fresh random tokens."""
        return cls(
            names=names,
            url=url,
            as_token=secrets.token_urlsafe(48),
            hs_token=secrets.token_urlsafe(48),
        )

    @classmethod
    def load(cls, path: Path, names: MatrixNames) -> AppServiceRegistration:
        """The registration a file holds (the one :meth:`write` wrote for ``names``).

        Raises:
            InvalidRegistration: the file is not such a registration.
        """
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidRegistration(
                f"cannot read the registration: {type(exc).__name__}"
            ) from None
        if not isinstance(data, dict):
            raise InvalidRegistration("the registration is not a mapping")
        registration = cls(
            names=names,
            url=str(data.get("url", "")),
            as_token=str(data.get("as_token", "")),
            hs_token=str(data.get("hs_token", "")),
            id=str(data.get("id", APPSERVICE_ID)),
        )
        if registration.as_dict()["namespaces"] != data.get("namespaces"):
            raise InvalidRegistration("the registration's namespaces are not this server's")
        return registration

    def accepts_homeserver_token(self, presented: str) -> bool:
        """Constant-time check of the token the homeserver presents."""
        return hmac.compare_digest(presented.encode(), self.hs_token.encode())

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "as_token": self.as_token,
            "hs_token": self.hs_token,
            "sender_localpart": HUB_SENDER_LOCALPART,
            # Mirrored membership changes must not wait behind a rate limit.
            "rate_limited": False,
            "receive_ephemeral": False,
            "namespaces": {
                "users": [
                    {"exclusive": True, "regex": self.names.user_namespace()},
                    {"exclusive": True, "regex": self.names.cards_namespace()},
                ],
                "aliases": [{"exclusive": True, "regex": self.names.alias_namespace()}],
                "rooms": [],
            },
        }

    def write(self, path: Path) -> Path:
        """Write the registration YAML for the homeserver, owner-readable only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(yaml.safe_dump(self.as_dict(), sort_keys=False))
        return path
