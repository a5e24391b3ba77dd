"""Response body of the caller's own profile (``GET /me``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class MeOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sub": "0b6f7c1e-2d3a-4c5b-8e9f-0123456789ab",
                    "username": "dr-zz82923",
                    "reg_no": "ZZ82923",
                    "institution": "harbour-cardiac-alliance",
                    "roles": ["doctor"],
                    "specialties": ["cardiology"],
                    "phase": 1,
                }
            ]
        }
    )

    sub: str
    username: str
    reg_no: str | None
    institution: str
    roles: list[str]
    specialties: list[str]
    phase: int
