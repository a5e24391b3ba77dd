"""Response body of the caller's own profile (``GET /me``)."""

from __future__ import annotations

from pydantic import BaseModel


class MeOut(BaseModel):
    sub: str
    username: str
    reg_no: str | None
    institution: str
    roles: list[str]
    specialties: list[str]
    phase: int
