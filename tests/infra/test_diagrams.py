"""The phase diagrams: generated from the deployment records, committed, and generic over
whatever components a record holds (a core, a layer, a homeserver)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.cli import app as hub_cli
from infra.diagrams import dot_source, phase_graph, render_svg
from infra.stage import STACK_PHASES

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "diagrams"


def _edges(dot: str) -> set[tuple[str, str]]:
    return set(re.findall(r"^\s*(\S+) -> (\S+) \[", dot, flags=re.M))


@pytest.mark.integration
@pytest.mark.parametrize("stack", list(STACK_PHASES))
def test_committed_diagrams_are_what_the_records_generate(
    stack: str, deployed_stacks: dict[str, Any]
) -> None:
    """Regenerate with `hub diagrams docs/diagrams` after a deploy (e.g. `make run`)."""
    dot = dot_source(deployed_stacks[stack])
    assert (COMMITTED / f"{stack}.dot").read_text() == dot, "run `hub diagrams docs/diagrams`"
    # the layout engine is pinned (constraints.txt), so the picture is byte for byte too
    assert (COMMITTED / f"{stack}.svg").read_text() == render_svg(dot)


def test_readme_shows_each_committed_diagram() -> None:
    readme = (ROOT / "README.md").read_text()
    for stack in STACK_PHASES:
        assert f"(docs/diagrams/{stack}.svg)" in readme


def _record(resources: list[tuple[str, str, str]], stack: str = "layer") -> dict[str, Any]:
    return {
        "stack": stack,
        "phase": 2,
        "region": "ap-east-1",
        "resources": [{"type": t, "name": n, "component": c} for t, n, c in resources],
    }


CORE = [
    ("aws:kms/key:Key", "keys-records", "keys"),
    ("aws:kms/alias:Alias", "keys-records-alias", "keys"),
    ("aws:s3/bucket:Bucket", "storage-shards", "storage"),
    ("aws:dynamodb/table:Table", "tables-ledger", "tables"),
    ("aws:apigateway/restApi:RestApi", "service-api", "service"),
    ("aws:lambda/function:Function", "service-api-function", "service"),
    ("aws:cognito/userPool:UserPool", "identity-user-pool", "identity"),
    ("aws:lambda/function:Function", "identity-pre-token", "identity"),
    ("aws:s3/bucket:Bucket", "audit-bucket", "audit"),
    ("aws:cloudtrail/trail:Trail", "audit-trail", "audit"),
]


def test_components_flows_and_trust_boundaries_of_a_core() -> None:
    dot = dot_source(_record(CORE, "core"))
    for component in ("keys", "storage", "tables", "service", "identity", "audit"):
        assert f'label="component: {component}"' in dot
    assert "cluster_internet" in dot and "trust boundary" in dot
    edges = _edges(dot)
    assert ("doctor", "service__apigateway") in edges
    assert ("service__apigateway", "service__lambda") in edges
    for target in ("keys__kms", "tables__dynamodb", "storage__s3"):
        assert ("service__lambda", target) in edges
    # shards go to the shard bucket, never the trail's; the sign-up triggers issue no URLs
    assert ("doctor", "storage__s3") in edges and ("doctor", "audit__s3") not in edges
    assert ("identity__lambda", "storage__s3") not in edges
    assert ("audit__cloudtrail", "audit__s3") in edges
    # a setting (the alias) is counted with its service, not drawn
    assert "+1 settings" in dot and "keys-records-alias" not in dot
    assert "homeserver" not in dot and "wafv2" not in dot


def test_shards_go_to_the_shard_bucket_never_the_web_sites() -> None:
    """The web client's bucket is an S3 node too (beside its reader role), read only
    through API Gateway's S3 integration: no doctor's shard and no function reaches it."""
    web = [
        ("aws:s3/bucket:Bucket", "web-site", "web"),
        ("aws:iam/role:Role", "web-reader", "web"),
    ]
    edges = _edges(dot_source(_record(CORE + web, "core")))
    assert ("doctor", "storage__s3") in edges and ("service__lambda", "storage__s3") in edges
    assert ("service__lambda", "audit__s3") in edges  # the ledger's checkpoints
    assert ("doctor", "web__s3") not in edges
    assert ("service__lambda", "web__s3") not in edges


def test_the_function_reaches_its_own_keys_never_the_backup_vaults() -> None:
    """The backup vault's key is a KMS node of its own component; the function's role has
    no grant on it, so no edge is drawn to it, while the keys component keeps its edge."""
    backup = [
        ("aws:kms/key:Key", "backup-vault-key", "backup"),
        ("aws:backup/vault:Vault", "backup-vault", "backup"),
    ]
    edges = _edges(dot_source(_record(CORE + backup, "core")))
    assert ("service__lambda", "keys__kms") in edges
    assert "backup__kms" in dot_source(_record(CORE + backup, "core"))
    assert ("service__lambda", "backup__kms") not in edges


def test_a_layer_draws_only_what_it_holds() -> None:
    layer = [
        ("aws:cognito/identityProvider:IdentityProvider", "idp-ha", "identity"),
        ("aws:wafv2/webAcl:WebAcl", "service-waf", "service"),
        ("aws:cloudwatch/metricAlarm:MetricAlarm", "alarm", "monitoring"),
        ("aws:sns/topic:Topic", "alarms", "monitoring"),
        ("pulumi:pulumi:StackReference", "core", ""),
    ]
    dot = dot_source(_record(layer))
    edges = _edges(dot)
    assert ("doctor", "service__wafv2") in edges and ("doctor", "identity__cognito") in edges
    assert ("monitoring__cloudwatch", "monitoring__sns") in edges
    # no flow into services the layer does not deploy
    assert not [e for e in edges if "apigateway" in e[1] or "lambda" in e[1]]
    assert "StackReference" not in dot


def test_the_homeserver_is_drawn_when_the_record_holds_one() -> None:
    with_matrix = [*CORE, ("aws:lambda/function:Function", "messaging-homeserver", "messaging")]
    edges = _edges(dot_source(_record(with_matrix)))
    assert ("doctor", "homeserver") in edges and ("homeserver", "service__apigateway") in edges


MESSAGING = [
    ("aws:ec2/vpc:Vpc", "messaging-vpc", "messaging"),
    ("aws:lb/loadBalancer:LoadBalancer", "messaging-public-alb", "messaging"),
    ("aws:lb/loadBalancer:LoadBalancer", "messaging-internal-alb", "messaging"),
    ("aws:ecs/service:Service", "messaging-homeserver", "messaging"),
    ("aws:rds/instance:Instance", "messaging-db", "messaging"),
    ("aws:s3/bucket:Bucket", "messaging-media", "messaging"),
    ("aws:secretsmanager/secret:Secret", "messaging-secrets", "messaging"),
    ("aws:lambda/function:Function", "messaging-appservice", "messaging"),
    ("aws:sqs/queue:Queue", "messaging-outbox-dlq", "messaging"),
    ("aws:sns/topic:Topic", "messaging-notifications", "messaging"),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "monitoring-root-use", "monitoring"),
    ("aws:sns/topic:Topic", "monitoring-security", "monitoring"),
]


def test_a_homeserver_the_record_runs_is_inside_the_account() -> None:
    dot = dot_source(_record([*CORE, *MESSAGING]))
    edges = _edges(dot)
    assert "homeserver [" not in dot  # not drawn on the internet side
    assert ("doctor", "messaging__lb") in edges
    assert {
        ("messaging__lb", "messaging__ecs"),
        ("messaging__ecs", "messaging__rds"),
        ("messaging__ecs", "messaging__s3"),
        ("messaging__ecs", "messaging__lb"),
        ("messaging__lb", "messaging__lambda"),
        ("messaging__lambda", "messaging__sqs"),
        ("messaging__lambda", "messaging__sns"),
        ("messaging__lambda", "tables__dynamodb"),
    } <= edges
    # doctors reach the media only through Synapse; the API's function never touches it
    assert ("doctor", "messaging__s3") not in edges
    assert ("service__lambda", "messaging__s3") not in edges
    # and the security alarms do not go to the doctors' notification topic
    assert ("monitoring__cloudwatch", "messaging__sns") not in edges
    # the homeserver's balancer answers the internet: a double border
    node = re.search(r"messaging__lb \[label=[^]]*\]", dot)
    assert node is not None and "peripheries=2" in node.group(0)


def test_same_record_same_diagram_whatever_the_order() -> None:
    assert dot_source(_record(CORE)) == dot_source(_record(list(reversed(CORE))))
    assert phase_graph(_record(CORE)).name == "layer"


def test_hub_diagrams_without_a_record_is_a_usage_error(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        hub_cli, ["diagrams", str(tmp_path / "out"), "--state-dir", str(tmp_path)]
    )
    assert result.exit_code == 2 and "no deployment record" in result.output


@pytest.mark.integration
def test_hub_diagrams_writes_dot_and_svg_from_the_records(
    deployed_stacks: dict[str, Any], tmp_path: Path
) -> None:
    record = deployed_stacks["phase3-private-practice"]
    record.save(tmp_path)
    out = tmp_path / "out"
    args = ["diagrams", str(out), "-s", record.stack, "--state-dir", str(tmp_path), "--json"]
    result = CliRunner().invoke(hub_cli, args)
    assert result.exit_code == 0, result.output
    paths = json.loads(result.stdout)["paths"]
    assert paths == [str(out / f"{record.stack}.dot"), str(out / f"{record.stack}.svg")]
    assert (out / f"{record.stack}.dot").read_text() == (
        COMMITTED / f"{record.stack}.dot"
    ).read_text()
