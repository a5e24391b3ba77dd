"""The hub as one deployment: the core's record with the layers deployed over it.

Each phase stack keeps its own deployment record (the core's holds the pool, the keys,
the tables and the API; a layer's holds only what its phase adds). What reads a
deployment as AWS serves it (the post-deploy checks of a layer, the local API gateway)
needs the hub a stack stands in: :func:`hub_view` merges the core's record with the
records of the layers up to that stack, under that stack's name and outputs (a layer
re-exports the core's outputs), and :func:`hub_stage` gives the stage the checks hold it
to. Pure: it reads records and stage files, never AWS.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from infra.emulator.record import DeploymentRecord
from infra.mockrun import StackNotDeployed
from infra.stage import CORE_STACK, STACK_PHASES, FederationProvider, Stage


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


def hub_stage(stack: str, state_dir: Path) -> Stage:
    """``stack``'s stage as the hub it stands in must look: the capacity is the core's
    (the layers share its API and function), the phase is the hub's (the highest stack
    deployed), and the federated providers are those of every stack deployed in the hub
    (phase 2's layer puts its providers on the core's pool, so the core's pool carries
    them while that layer stands)."""
    from infra.verify import load_stage

    stage = load_stage(stack)
    core = load_stage(CORE_STACK) if stack != CORE_STACK else stage
    providers: dict[str, FederationProvider] = {}
    phase = stage.phase
    for deployed, deployed_phase in STACK_PHASES.items():
        if deployed == stack or DeploymentRecord.load(deployed, state_dir) is not None:
            phase = max(phase, deployed_phase)
            for provider in load_stage(deployed).federation:
                providers.setdefault(provider.name, provider)
    # The phase the hub runs: the highest stack standing (the core's checks then expect
    # that phase's providers on its pool, and none once the layers are gone).
    return dataclasses.replace(
        stage, phase=phase, capacity=core.capacity, federation=tuple(providers.values())
    )


def hub_ledger_trails(stacks: Iterable[str]) -> int:
    """The trails of the audit ledger (``HUB_LEDGER_TRAILS``) of a hub whose ``stacks``
    stand: the largest ``hub:capacity.ledgerTrails`` of their stages, that is the core's
    own, or the floor of the highest layer when that is higher.

    On AWS a layer is promoted only once the deployed core meets its floor
    (:func:`infra.rollout.capacity_refusal`), so a hub standing at phase 3 runs at least
    phase 3's trails. The local platform brings its phases up together, without that
    gate and without raising the core's file; its service runs the trails that gate
    would have demanded, so a phase-2 or phase-3 hub spreads its ledger as the promoted
    one on AWS does (docs/ledger.md, "Trails"). One phase alone (a standalone platform,
    a hub of its own) runs its own stage's trails.
    """
    from infra.verify import load_stage

    return max(load_stage(stack).capacity.ledger_trails for stack in stacks)


def verification_target(
    record: DeploymentRecord, state_dir: Path
) -> tuple[DeploymentRecord, Stage]:
    """What verifying ``record`` checks: its hub view and its hub stage.

    The view's ``intakeClients`` are those of every stack deployed in the hub (phase 2's
    and phase 3's layers put their intake clients on the core's one pool, as phase 2 puts
    its providers), so each stack's ``cognito.intake_channel`` expects every client that
    carries the intake scope on the pool, and no other."""
    view = hub_view(record, state_dir)
    clients: list[object] = []
    for stack in STACK_PHASES:
        deployed = record if stack == record.stack else DeploymentRecord.load(stack, state_dir)
        if deployed is not None:
            clients.extend(deployed.outputs.get("intakeClients") or [])
    outputs = dict(view.outputs)
    if clients:
        outputs["intakeClients"] = clients
    else:
        outputs.pop("intakeClients", None)
    return dataclasses.replace(view, outputs=outputs), hub_stage(record.stack, state_dir)
