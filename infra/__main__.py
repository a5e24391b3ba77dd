"""Pulumi entry point (``main: infra/``): read the stack's configuration once, then declare.

This is the only module that reads configuration. A missing or invalid key stops the
program here, before any resource is declared, with the key's name and what was expected.
"""

from __future__ import annotations

import pulumi

from infra.config_source import stage_from_pulumi_config
from infra.program import declare

stage, oidc_secrets = stage_from_pulumi_config()
for output_name, value in declare(stage, oidc_secrets).items():
    pulumi.export(output_name, value)
