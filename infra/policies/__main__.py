"""CrossGuard entry point: serve the hub-hk-health policy pack to the Pulumi CLI.

Run by the CLI (``pulumi preview --policy-pack infra/policies``), never imported: building
``PolicyPack`` starts the analyzer's gRPC server and blocks. Every policy comes from
``infra.policies.pack.BINDINGS``, so the pack enforces exactly what the tests evaluate.
"""

import sys
from pathlib import Path

# The CLI runs the pack from this directory; make the project importable even when it is
# not installed into the virtualenv.
_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
if _PROJECT_ROOT not in sys.path:
    sys.path.insert(0, _PROJECT_ROOT)

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from infra.policies.pack import PACK_NAME, pulumi_policies  # noqa: E402

PolicyPack(
    name=PACK_NAME,
    policies=pulumi_policies(),
    enforcement_level=EnforcementLevel.MANDATORY,
    description="Health Collaboration Hub: Hong Kong data residency, encryption, TLS and "
    "least-privilege checks before any resource is created.",
    provider="aws",
    tags=["health", "hong-kong", "cap-486", "iso-27799", "cis-aws"],
)
