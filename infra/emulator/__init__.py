"""The emulator: runs the Pulumi program without the Pulumi engine and creates every
declared resource on an AWS-compatible endpoint (moto on loopback by default).

Public API (the verify checks, the CLI and the tests rely on exactly these names):
``deploy``, ``destroy``, ``DestroyResult``, ``DeploymentRecord``, ``ResourceRecord``,
``Gap``, ``UnsupportedResourceType``, ``load_record``, ``start_moto_server``,
``EmulatorMocks``, ``LayerStands``.

Guarantees: every declared resource is created through the real AWS API on the
endpoint, never faked; an unknown type is an error naming it; deploys are idempotent;
what the emulator cannot enforce is recorded as a gap naming the covering check.
"""

from infra.emulator.engine import DestroyResult, LayerStands, deploy, destroy
from infra.emulator.mocks import EmulatorMocks
from infra.emulator.provision import UnsupportedResourceType, supported_types
from infra.emulator.record import DeploymentRecord, Gap, ResourceRecord, load_record
from infra.emulator.server import start_moto_server

__all__ = [
    "DeploymentRecord",
    "DestroyResult",
    "EmulatorMocks",
    "Gap",
    "LayerStands",
    "ResourceRecord",
    "UnsupportedResourceType",
    "deploy",
    "destroy",
    "load_record",
    "start_moto_server",
    "supported_types",
]
