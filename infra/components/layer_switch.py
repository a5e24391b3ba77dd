"""A layer's switch: the item in the core's institutions table that says its phase is on.

What a phase turns on in the one hub (its features, the cohort it admits) is data owned
by the phase's layer, not configuration of the core: the layer declares this item, so
its deploy writes it and its destroy removes it, and removing a layer turns its phase
off again. The item sits beside the institutions (``pk`` ``LAYER``, ``sk`` the stack) and
holds no personal data: the phase, the feature flags (``federation``, ``selfRegistration``,
...), the app clients the layer declared on the core's pool (``clientIds``: phase 2's
federated client), the clinic systems' app clients its community-care intake declared
(``intakeClientIds``) and the cohort's institution ids. The sharing service reads it
(``app.identity.affiliations.HubSwitches``, strongly consistent, on every request): it
accepts tokens of those clients, intake submissions from those systems, and opens
self-registration only while the item stands.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.stage import Features

LAYER_PK = "LAYER"


@dataclass(frozen=True)
class LayerSwitchArgs:
    stack: str
    phase: int
    institutions_table_name: pulumi.Input[str]
    features: Features
    cohort: Sequence[str]
    # The app clients this layer declares on the core's pool (its federated client).
    client_ids: Sequence[pulumi.Input[str]] = ()
    # The clinic systems' app clients its community-care intake declares.
    intake_client_ids: Sequence[pulumi.Input[str]] = ()


def switch_item(
    args: LayerSwitchArgs, client_ids: Sequence[str] = (), intake_client_ids: Sequence[str] = ()
) -> dict[str, object]:
    """The item, in DynamoDB's attribute-value JSON (``client_ids`` and
    ``intake_client_ids`` resolved)."""
    return {
        "pk": {"S": LAYER_PK},
        "sk": {"S": args.stack},
        "phase": {"N": str(args.phase)},
        "federation": {"BOOL": bool(client_ids)},
        "clientIds": {"L": [{"S": c} for c in client_ids]},
        "selfRegistration": {"BOOL": args.features.self_registration},
        "waf": {"BOOL": args.features.waf},
        "communityCareIntake": {"BOOL": args.features.community_care_intake},
        "intakeClientIds": {"L": [{"S": c} for c in intake_client_ids]},
        "cohort": {"L": [{"S": i} for i in args.cohort]},
    }


class LayerSwitch(pulumi.ComponentResource):
    item: aws.dynamodb.TableItem

    def __init__(
        self, name: str, args: LayerSwitchArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("hub:layer:LayerSwitch", name, None, opts)
        self.item = aws.dynamodb.TableItem(
            f"{name}-item",
            table_name=args.institutions_table_name,
            hash_key="pk",
            range_key="sk",
            item=pulumi.Output.all(
                pulumi.Output.all(*args.client_ids), pulumi.Output.all(*args.intake_client_ids)
            ).apply(
                lambda ids: json.dumps(
                    switch_item(args, [str(i) for i in ids[0]], [str(i) for i in ids[1]]),
                    sort_keys=True,
                )
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"phase": args.phase})
