"""Shared helpers for the interop tests: the synthetic samples and small message builders."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

TESTDATA = Path(__file__).resolve().parent / "testdata"


@cache
def manifest() -> dict[str, Any]:
    return json.loads((TESTDATA / "manifest.json").read_text())


def sample(name: str) -> bytes:
    return (TESTDATA / name).read_bytes()


def sample_entry(name: str) -> dict[str, Any]:
    return next(s for s in manifest()["samples"] if s["file"] == name)


def hl7_message(*segments: str) -> bytes:
    return "\r".join(segments).encode("utf-8")


def resources(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type
    ]


MSH_ADT = "MSH|^~\\&|T|T|HUB|HUB|20260101120000||ADT^A01^ADT_A01|C1|P|2.5.1"
MSH_ORU = "MSH|^~\\&|T|T|HUB|HUB|20260101120000||ORU^R01^ORU_R01|C2|P|2.5.1"
PID = "PID|1||M0001^^^T^MR~A123456(3)^^^HKG^NNHKG||CHAN^TAI MAN||19800101|M"
PV1 = "PV1|1|O"
OBR = "OBR|1|P1|F1|24331-1^Lipid panel^LN|||20260101080000||||||||||||||||||F"
OBX_NM = "OBX|1|NM|2093-3^Cholesterol^LN||5.80|mmol/L^mmol/L^UCUM|||||F"
