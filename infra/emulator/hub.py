"""The hub as one deployment: the core's record with the layers deployed over it.

Each phase stack keeps its own deployment record (the core's holds the pool, the keys,
the tables and the API; a layer's holds only what its phase adds). What reads a
deployment as AWS serves it (the post-deploy checks of a layer, the local API gateway)
needs the hub a stack stands in: :func:`hub_view` merges the core's record with the
records of the layers up to that stack, under that stack's name and outputs (a layer
re-exports the core's outputs). Pure: it reads records, never AWS.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from infra.emulator.record import DeploymentRecord
from infra.mockrun import StackNotDeployed
from infra.stage import CORE_STACK, STACK_PHASES


def hub_view(record: DeploymentRecord, state_dir: Path) -> DeploymentRecord:
    """``record`` with the resources and gaps of the core and of the layers below it.

    The core's own record is returned as it is. For a layer the merged record lists the
    core's resources first (creation order), then each deployed layer's up to
    ``record``'s phase; outputs, stack and release stay ``record``'s.

    Raises:
        StackNotDeployed: ``record`` is a layer and the core has no record.
    """
    phase = STACK_PHASES.get(record.stack, 1)
    if phase == 1:
        return record
    core = DeploymentRecord.load(CORE_STACK, state_dir)
    if core is None:
        raise StackNotDeployed(record.stack, CORE_STACK)
    parts = [core]
    for stack, p in STACK_PHASES.items():
        if 1 < p < phase:
            below = DeploymentRecord.load(stack, state_dir)
            if below is not None:
                parts.append(below)
    parts.append(record)
    gaps = {(g.resource, g.type, g.property): g for part in parts for g in part.gaps}
    return dataclasses.replace(
        record,
        resources=[r for part in parts for r in part.resources],
        gaps=list(gaps.values()),
    )


def top_of_hub(state_dir: Path) -> DeploymentRecord | None:
    """The highest deployed stack's record, as the whole hub (None: no core)."""
    top = None
    for stack in STACK_PHASES:
        found = DeploymentRecord.load(stack, state_dir)
        if found is None:
            break
        top = found
    return hub_view(top, state_dir) if top is not None else None
