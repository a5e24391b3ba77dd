"""Throughput of the interop adapters (app/interop), with the plain parse as baseline.

For each input kind the same bytes go through two variants, interleaved within every
round so background load on the shared machine hits both alike, and the medians over the
rounds are reported:

- **parse**: the parser alone: python-hl7 (after decoding), defusedxml's ElementTree, or
  ``json.loads``; no mapping, no FHIR validation;
- **convert**: the whole adapter: parse, map to FHIR R4B, serialise canonically and
  validate with fhir.resources (``app.interop.convert``).

Inputs are the synthetic samples of ``tests/app/interop/testdata`` (one HL7 v2 message per
type; the CDA discharge summary; the FHIR R4 bundle) plus two larger synthetic documents
built here: a CDA results report with 2,000 observations (~1 MiB) and a FHIR R4 bundle
of 1,000 observations. Figures: HL7 v2 in messages/s per type, CDA in MB/s (and docs/s),
FHIR R4 -> R4B in resources/s and MB/s; ``convert/parse`` is how many times slower the
whole adapter is than parsing alone.

Run: ``.venv/bin/python -m benchmarks interop`` (``--rounds``, ``--seconds`` per sample).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import defusedxml.ElementTree

from app.interop import convert
from app.interop.hl7v2 import parse_hl7v2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.app.interop.testdata.make_interop_samples import (  # noqa: E402
    HKID,
    HKID_OID,
    MRN_B,
    samples,
)

MB = 1_000_000


@dataclass(frozen=True)
class Case:
    name: str
    unit: str  # what one call handles: "msg", "doc", "bundle"
    body: bytes
    media_type: str
    institution: str
    parse: Callable[[bytes], object]
    items: int = 1  # resources in one call (FHIR bundles)


def large_cda(observations: int) -> bytes:
    entries = "".join(
        f"""<entry><observation classCode="OBS" moodCode="EVN">
<id root="2.25.115631129371402779524452417711116340145" extension="OBS-{i}"/>
<code code="2345-7" codeSystem="2.16.840.1.113883.6.1" displayName="Glucose"/>
<statusCode code="completed"/><effectiveTime value="20260109080000+0800"/>
<value xsi:type="PQ" value="{4 + (i % 50) / 10:.1f}" unit="mmol/L"/>
<interpretationCode code="N" codeSystem="2.16.840.1.113883.5.83"/>
<referenceRange><observationRange><text>3.9-5.6 mmol/L</text></observationRange></referenceRange>
</observation></entry>"""
        for i in range(observations)
    )
    rows = "".join(
        f"<tr><td>Glucose {i}</td><td>{4 + (i % 50) / 10:.1f} mmol/L</td></tr>"
        for i in range(observations)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
<id root="2.25.92514407163651003305325016331434112917" extension="BENCH-1"/>
<code code="11502-2" codeSystem="2.16.840.1.113883.6.1" displayName="Laboratory report"/>
<title>Laboratory Report</title><effectiveTime value="20260110143000+0800"/>
<recordTarget><patientRole>
<id root="2.25.115631129371402779524452417711116340145" extension="{MRN_B}"/>
<id root="{HKID_OID}" extension="{HKID}"/>
<patient><name><family>CHAN</family><given>TAI MAN</given></name>
<administrativeGenderCode code="M"/><birthTime value="19800101"/></patient>
</patientRole></recordTarget>
<author><time value="20260110"/><assignedAuthor><id root="2.25.1" extension="ZZ20001"/>
<assignedPerson><name><family>WONG</family></name></assignedPerson></assignedAuthor></author>
<component><structuredBody><component><section>
<code code="30954-2" codeSystem="2.16.840.1.113883.6.1"/><title>Results</title>
<text><table><tbody>{rows}</tbody></table></text>{entries}
</section></component></structuredBody></component></ClinicalDocument>""".encode()


def large_fhir_r4(observations: int) -> bytes:
    patient = "urn:uuid:0b0e64a4-6d0d-4d1a-9d55-6a1d4a0d0001"
    entries: list[dict[str, object]] = [
        {
            "fullUrl": patient,
            "resource": {
                "resourceType": "Patient",
                "identifier": [
                    {
                        "type": {"coding": [{"code": "MR"}]},
                        "system": "urn:oid:2.25.1",
                        "value": MRN_B,
                    }
                ],
            },
        }
    ]
    for i in range(observations):
        entries.append(
            {
                "fullUrl": f"urn:uuid:0b0e64a4-6d0d-4d1a-9d55-{i:012d}",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
                    "subject": {"reference": patient},
                    "effectiveDateTime": "2026-01-09T08:00:00+08:00",
                    "valueQuantity": {
                        "value": 4 + (i % 50) / 10,
                        "unit": "mmol/L",
                        "system": "http://unitsofmeasure.org",
                        "code": "mmol/L",
                    },
                },
            }
        )
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    return json.dumps(bundle).encode()


def cases() -> list[Case]:
    found = samples()
    out: list[Case] = []
    for name, label in (
        ("adt_a01.hl7", "HL7 v2 ADT^A01"),
        ("adt_a04.hl7", "HL7 v2 ADT^A04"),
        ("adt_a08.hl7", "HL7 v2 ADT^A08"),
        ("oru_r01.hl7", "HL7 v2 ORU^R01 (6 OBX)"),
    ):
        media, institution, body = found[name]
        out.append(Case(label, "msg", body, media, institution, parse_hl7v2))
    media, institution, body = found["discharge_summary.cda.xml"]
    out.append(Case("CDA discharge summary", "doc", body, media, institution, _xml))
    out.append(Case("CDA lab report, 2000 obs", "doc", large_cda(2000), media, institution, _xml))
    media, institution, body = found["observation_r4.fhir-in.json"]
    out.append(
        Case("FHIR R4->R4B bundle, 2 res", "bundle", body, media, institution, json.loads, 2)
    )
    out.append(
        Case(
            "FHIR R4->R4B bundle, 1001 res",
            "bundle",
            large_fhir_r4(1000),
            media,
            institution,
            json.loads,
            1001,
        )
    )
    return out


def _xml(body: bytes) -> object:
    return defusedxml.ElementTree.fromstring(body, forbid_dtd=True)


def _calls_per_second(function: Callable[[], object], seconds: float) -> float:
    """Calls per second over a sample of at least ``seconds`` (whole calls)."""
    calls = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds or calls == 0:
        function()
        calls += 1
        elapsed = time.perf_counter() - start
    return calls / elapsed


def run(rounds: int, seconds: float) -> list[dict[str, object]]:
    results = []
    for case in cases():
        record = convert(case.body, case.media_type, institution=case.institution)
        assert record.source == case.body  # the adapter works on this input
        variants = {
            "parse": lambda c=case: c.parse(c.body),
            "convert": lambda c=case: convert(c.body, c.media_type, institution=c.institution),
        }
        samples_: dict[str, list[float]] = {v: [] for v in variants}
        for _ in range(rounds):
            for variant, function in variants.items():
                samples_[variant].append(_calls_per_second(function, seconds))
        parse_rate = statistics.median(samples_["parse"])
        convert_rate = statistics.median(samples_["convert"])
        results.append(
            {
                "case": case.name,
                "unit": case.unit,
                "bytes": len(case.body),
                "parse_per_s": parse_rate,
                "convert_per_s": convert_rate,
                "parse_mb_s": parse_rate * len(case.body) / MB,
                "convert_mb_s": convert_rate * len(case.body) / MB,
                "convert_resources_per_s": convert_rate * case.items,
                "ratio": parse_rate / convert_rate,
            }
        )
    return results


def report(results: list[dict[str, object]]) -> None:
    header = (
        f"{'input':32} {'bytes':>9} {'parse/s':>10} {'convert/s':>10} "
        f"{'parse MB/s':>10} {'conv MB/s':>10} {'convert/parse':>14}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['case']!s:32} {r['bytes']:>9} {r['parse_per_s']:>10.1f} "
            f"{r['convert_per_s']:>10.1f} {r['parse_mb_s']:>10.2f} {r['convert_mb_s']:>10.2f} "
            f"{r['ratio']:>13.1f}x"
        )
    fhir = [r for r in results if str(r["case"]).startswith("FHIR")]
    for r in fhir:
        print(f"{r['case']}: {r['convert_resources_per_s']:.0f} resources/s converted")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_interop", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--seconds", type=float, default=0.5, help="minimum seconds per sample")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    results = run(args.rounds, args.seconds)
    report(results)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
