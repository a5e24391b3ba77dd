"""The OAuth names of the intake channel, shared by the service and the program that
declares them (``infra/components/intake.py``)."""

from __future__ import annotations

# The user pool's resource server for intake, and its one scope: a token on the
# client-credentials grant carries "hub-intake/records.write".
INTAKE_RESOURCE_SERVER = "hub-intake"
INTAKE_WRITE_SCOPE_NAME = "records.write"
INTAKE_WRITE_SCOPE = f"{INTAKE_RESOURCE_SERVER}/{INTAKE_WRITE_SCOPE_NAME}"
# The role a submitting system's principal holds (never granted to an account).
INTAKE_SYSTEM_ROLE = "intake_system"
