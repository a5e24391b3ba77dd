"""The API as ``hub local up`` starts it: settings from local.json, a real HTTP server."""

from __future__ import annotations

import httpx
import pytest
from hub_testkit import ADMITTED, Hub

from app.identity.register import parse_register
from app.local import LocalApi, settings_from_local_json
from infra.emulator.server import free_port


def local_document(hub: Hub) -> dict[str, object]:
    s = hub.settings
    return {
        "emulatorEndpoint": hub.endpoint,
        "apiBaseUrl": None,
        "stacks": {
            "phase1-specialist": {
                "phase": 1,
                "outputs": {
                    "userPoolId": s.cognito_user_pool_id,
                    "userPoolClientIds": [s.cognito_client_id, "federated-client-id"],
                    "issuer": s.cognito_issuer,
                    "tableNames": {
                        "register": s.table_register,
                        "groups": s.table_groups,
                        "records": s.table_records,
                        "ledger": s.table_ledger,
                        "institutions": s.table_institutions,
                        "patients": s.table_patients,
                    },
                },
            }
        },
        "demoUsers": [
            {"stack": "phase1-specialist", "username": f"u{i}", "institution": inst}
            for i, inst in enumerate(ADMITTED)
        ]
        + [{"stack": "phase2-hospital-authority", "username": "x", "institution": "elsewhere"}],
    }


def test_settings_come_from_the_stack_outputs(hub: Hub) -> None:
    settings = settings_from_local_json(local_document(hub), "phase1-specialist")
    # Admission is the institutions table's, not a setting; phase 1 has no sign-up.
    assert settings.table_institutions == hub.settings.table_institutions
    assert settings.cognito_federated_client_id == "federated-client-id"
    assert not settings.self_registration
    assert settings.cognito_issuer == hub.settings.cognito_issuer
    with pytest.raises(KeyError, match="phase3"):
        settings_from_local_json(local_document(hub), "phase3-private-practice")


def test_a_layers_service_is_its_cores(hub: Hub) -> None:
    """The one hub has one service, configured as the core's function is: a layer's entry
    gives the core's phase, clients and (closed) self-registration; what the layer turns
    on is read from its switch, not from settings."""
    document = local_document(hub)
    stacks: dict[str, object] = document["stacks"]  # type: ignore[assignment]
    core = stacks["phase1-specialist"]
    assert isinstance(core, dict)
    layer_outputs = {
        **core["outputs"],
        "coreStack": "phase1-specialist",
        "userPoolClientIds": [*core["outputs"]["userPoolClientIds"], "layer-client-id"],
    }
    stacks["phase3-private-practice"] = {"phase": 3, "outputs": layer_outputs}
    settings = settings_from_local_json(document, "phase3-private-practice")
    assert settings.phase == 1 and not settings.self_registration
    # The ledger's origin, as the core's function signs it (HUB_STACK): one hub, one
    # origin for every process that serves it, whichever stack it was started for.
    assert settings.stack == "phase1-specialist"
    assert settings_from_local_json(document, "phase1-specialist").stack == "phase1-specialist"
    assert settings.cognito_federated_client_id == "federated-client-id"


def test_the_ledger_runs_the_trails_local_json_names(hub: Hub) -> None:
    """The service's ledger spreads over the document's ``ledgerTrails`` (the hub's, as
    ``hub local up`` and the standalone platform write it); an older document without
    it is a single-trail ledger."""
    document = local_document(hub)
    assert settings_from_local_json(document, "phase1-specialist").ledger_trails == 1
    document["ledgerTrails"] = 8
    assert settings_from_local_json(document, "phase1-specialist").ledger_trails == 8


def test_local_api_serves_over_http(hub: Hub) -> None:
    api = LocalApi(local_document(hub), "phase1-specialist", port=free_port())
    base = api.start()
    try:
        assert httpx.get(f"{base}/health").json() == {"status": "ok"}
        assert httpx.get(f"{base}/me").status_code == 401
        me = httpx.get(f"{base}/me", headers=hub.signed_in_headers("dr-lead"))
        assert me.status_code == 200 and me.json()["reg_no"] == "M20001"
    finally:
        api.stop()


def test_the_demo_generator_writes_the_published_list_format() -> None:
    synthetic = pytest.importorskip("app.identity.synthetic")
    population = synthetic.generate_population(["harbour-cardiac-alliance"], seed=7)
    entries = parse_register(
        synthetic.general_csv(population.doctors), synthetic.specialist_csv(population.doctors)
    )
    assert len(entries) == len(population.doctors)
    assert any(e.specialties for e in entries)
