"""The Medical Council register import: the published-list CSV format and the store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import boto3
import pytest
from hub_testkit import Hub

from app.identity.register import (
    RegisterFormatError,
    RegisterStore,
    import_register,
    parse_register,
)
from app.identity.registration import RegistrationStatus

GENERAL = """Registration No.,Name (English),Name (Chinese),Address,Qualifications
M50001,SYNTHETIC Alpha,合成甲,1 Example Road,MB BS (Synthetic); MRCP (Synthetic)
m50002 ,SYNTHETIC Beta,合成乙,2 Example Road,MB ChB (Synthetic)
"""
SPECIALIST = """Registration No.,Name (English),Name (Chinese),Address,Qualifications,Specialty
M50001,SYNTHETIC Alpha,合成甲,1 Example Road,FHKAM (Synthetic),Cardiology
M50001,SYNTHETIC Alpha,合成甲,1 Example Road,FHKAM (Synthetic),Geriatric Medicine
"""


def test_parse_published_lists() -> None:
    entries = {e.reg_no: e for e in parse_register(GENERAL, SPECIALIST)}
    assert set(entries) == {"M50001", "M50002"}
    alpha = entries["M50001"]
    assert alpha.name_zh == "合成甲"
    assert alpha.qualifications == ("MB BS (Synthetic)", "MRCP (Synthetic)")
    assert alpha.specialties == ("cardiology", "geriatric medicine")
    assert alpha.status is RegistrationStatus.ACTIVE
    assert entries["M50002"].specialties == ()


@pytest.mark.parametrize(
    ("general", "specialist", "message"),
    [
        ("Registration No.,Name (English)\nM1,x\n", None, "missing columns"),
        (GENERAL + "X1,Bad,,,\n", None, "registration_number_malformed"),
        (GENERAL + "M50001,Dup,,,\n", None, "duplicate"),
        (GENERAL.replace("SYNTHETIC Beta", ""), None, "English name is empty"),
        (
            GENERAL.replace("Qualifications\n", "Qualifications,Status\n").replace(
                "MB ChB (Synthetic)\n", "MB ChB (Synthetic),struck-off\n"
            ),
            None,
            "unknown status",
        ),
        (GENERAL, SPECIALIST + "M59999,Nobody,,,,Cardiology\n", "not on the general register"),
    ],
)
def test_malformed_lists_are_rejected_with_the_line(
    general: str, specialist: str | None, message: str
) -> None:
    with pytest.raises(RegisterFormatError, match=message):
        parse_register(general, specialist)


def test_errors_never_quote_row_content() -> None:
    with pytest.raises(RegisterFormatError) as raised:
        parse_register(GENERAL + "M50001,SYNTHETIC Secret Name,,,\n")
    assert "Secret" not in str(raised.value)


def test_import_into_the_register_table_and_mark_missing_removed(hub: Hub) -> None:
    dynamodb = boto3.resource("dynamodb", region_name="ap-east-1", endpoint_url=hub.endpoint)
    name = f"register-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "reg_no", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "reg_no", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    store = RegisterStore(dynamodb.Table(name))
    summary = import_register(store, GENERAL, SPECIALIST, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert (summary.imported, summary.specialists, summary.marked_removed) == (2, 1, 0)
    alpha = store.entry("M50001")
    assert alpha is not None and alpha.specialties == ("cardiology", "geriatric medicine")
    found = store.find("M50001")
    assert found is not None and found.specialty == "cardiology"
    # The next published list no longer has Beta: Beta is removed, not deleted.
    summary = import_register(store, GENERAL.splitlines()[0] + "\n" + GENERAL.splitlines()[1])
    assert summary.marked_removed == 1
    beta = store.entry("M50002")
    assert beta is not None and beta.status is RegistrationStatus.REMOVED


def test_a_bad_file_writes_nothing(hub: Hub) -> None:
    dynamodb = boto3.resource("dynamodb", region_name="ap-east-1", endpoint_url=hub.endpoint)
    name = f"register-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "reg_no", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "reg_no", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    store = RegisterStore(dynamodb.Table(name))
    with pytest.raises(RegisterFormatError):
        import_register(store, GENERAL + "M50001,Dup,,,\n")
    assert store.all_reg_nos() == set()
