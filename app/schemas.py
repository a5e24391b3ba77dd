"""Request-body building blocks shared by every domain's routes, defined once.

:class:`Strict` refuses unknown fields, so a misspelt field is a 422 rather than silently
ignored. :data:`PatientId` is the one accepted shape of a patient identifier: an opaque id
issued by the referring system, never an HKID number in free form.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# An opaque patient identifier issued by the referring system (never an HKID number).
PatientId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{2,63}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
