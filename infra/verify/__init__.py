"""Post-deploy verification: checks against a live deployment, mapped to controls.

``verify_stack(record)`` reads the stack's outputs (and resource list and gaps) from a
deployment record, reads the live configuration of those resources through boto3
(``infra.verify.collect``), evaluates every check over that plain data
(``infra.verify.evaluate``, rules in ``infra.verify.rules``) and returns a
:class:`VerifyReport` with one :class:`CheckResult` per (check, resource), each naming
the requirements it evidences (``infra.verify.checks``, bound to the control catalogue
``infra.controls.catalogue`` that the policy pack cites too). ``infra.verify.report``
renders it as a terminal table, a JSON report and a Markdown compliance report.

The same calls run against AWS, moto or LocalStack: nothing here is emulator-specific.
Where the record says the emulator could not hold a declared property, the evidence
says the check was made on the declared value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from infra.controls.result import Status
from infra.stage import Stage
from infra.verify.clients import DEFAULT_REGION, ClientFactory
from infra.verify.collect import collect as collect_snapshot
from infra.verify.evaluate import evaluate as evaluate_snapshot
from infra.verify.expectations import Expectations, expectations_from_record
from infra.verify.model import CheckResult, DeploymentRecordLike, RunContext, VerifyReport

__all__ = [
    "CheckResult",
    "ClientFactory",
    "DeploymentRecordLike",
    "RunContext",
    "Status",
    "VerifyReport",
    "expectations_for",
    "load_stage",
    "verify_stack",
]


def load_stage(stack: str) -> Stage:
    """The typed stage of ``stack`` from its stage file (no secrets needed)."""
    from infra.config_source import read_stage_file, split_namespace
    from infra.stage import parse_stage

    region, raw, _secrets = split_namespace(read_stage_file(stack))
    return parse_stage(stack, region, raw)


def expectations_for(record: DeploymentRecordLike, stage: Stage | None = None) -> Expectations:
    """What ``record``'s stack must look like; the stage defaults to its stage file."""
    stage = stage or load_stage(record.stack)
    return expectations_from_record(
        record,
        phase=stage.phase,
        audit_retention_years=stage.audit_retention_years,
        federation={p.name: p.protocol for p in stage.federation},
        provider_claims={p.name: p.mapping().required_claims() for p in stage.federation},
        waf=stage.features.waf,
        throttle=(stage.capacity.api_throttle_rate_limit, stage.capacity.api_throttle_burst_limit),
    )


def verify_stack(
    record: DeploymentRecordLike,
    *,
    endpoint_url: str | None = None,
    stage: Stage | None = None,
    clients: ClientFactory | None = None,
    endpoints: Mapping[str, str] | None = None,
) -> VerifyReport:
    """Run every post-deploy check on the stack ``record`` describes.

    Args:
        record: the deployment record (outputs, resources, gaps) of one stack.
        endpoint_url: the AWS endpoint (an emulator's); None means AWS itself, or
            ``AWS_ENDPOINT_URL`` when set.
        stage: the stack's typed stage; read from ``stages/`` when not given.
        clients: a client factory to use instead of one made for ``endpoint_url``.
        endpoints: per-service endpoints replacing ``endpoint_url`` for those services
            (boto3 names); defaults to the record's own ``endpoints``, if it has any.
    """
    expect = expectations_for(record, stage)
    outputs: Mapping[str, object] = record.outputs
    region = str(outputs.get("region") or DEFAULT_REGION)
    if endpoints is None:
        endpoints = getattr(record, "endpoints", None)
    factory = clients or ClientFactory(
        endpoint_url=endpoint_url, region=region, endpoints=endpoints
    )
    snapshot = collect_snapshot(factory, expect.targets())
    return VerifyReport(
        stack=record.stack,
        checks=evaluate_snapshot(expect, snapshot),
        endpoint=factory.endpoint_url,
        generated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        context=run_context(record, factory, expect.account_id, expect.phase),
    )


def run_context(
    record: DeploymentRecordLike, clients: ClientFactory, account_id: str, phase: int | None
) -> RunContext:
    """The report's header: this program's release, the deployment's account, region and
    target, and who ran the checks (the OS user and the AWS identity the calls used)."""
    import getpass

    from infra.emulator.record import current_release, git_short_sha, package_version
    from infra.verify.collect import fetch, unreadable_reason

    identity = fetch(lambda: clients("sts").get_caller_identity())
    caller = (
        str(identity.get("Arn"))
        if isinstance(identity, Mapping) and not unreadable_reason(identity)
        else None
    )
    try:
        operator = getpass.getuser()
    except (KeyError, OSError):
        operator = "unknown"
    deployed_by = str(getattr(record, "target", "") or "emulator")
    endpoint = clients.endpoint_url or next(iter(clients.endpoints.values()), None)
    return RunContext(
        release=current_release(),
        program_version=package_version(),
        commit=git_short_sha()[0],
        deployed_release=str(getattr(record, "release", "") or ""),
        account_id=str(getattr(record, "account_id", "") or account_id),
        region=clients.region,
        # evidence is AWS's only when the calls went to AWS itself
        target="aws" if deployed_by == "pulumi" and endpoint is None else "emulator",
        endpoint=endpoint,
        operator=operator,
        caller_arn=caller,
        phase=phase,
    )
