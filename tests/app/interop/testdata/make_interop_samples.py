# ruff: noqa: E501 -- the CDA templates are XML kept as written, one element per line
"""Regenerate the synthetic interop samples (inputs) and, on request, their golden outputs.

Run from the repository root::

    .venv/bin/python tests/app/interop/testdata/make_interop_samples.py            # inputs
    .venv/bin/python tests/app/interop/testdata/make_interop_samples.py --golden   # + goldens

Everything here is synthetic: one made-up patient (the placeholder name CHAN TAI MAN,
a birth date, an HKID drawn from a seeded generator with its check digit computed
here, independently of ``app.patients.hkid``) seen by two made-up institutions:
``clinic-a`` (a community clinic sending HL7 v2 and FHIR) and ``hospital-b`` (a
hospital sending CDA documents and FHIR R4). Doctors carry ``ZZ`` registration numbers,
which the Medical Council does not issue.

``--golden`` runs the adapters and writes ``<sample>.fhir.json`` beside each input. The
goldens are then reviewed by reading them (the diff of a change to an adapter is the
change in its output); the tests compare every adapter run against them byte for byte
after parsing, and separately assert the individual mappings by hand.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
HKID_OID = "2.25.330220371262004718919806715494581431586"
MCHK_OID = "2.25.161999420870332369317016947778175295683"


def hkid_check_digit(prefix: str, digits: str) -> str:
    """Mod-11 check digit, weights 9..2, a one-letter prefix read with a leading space (36)."""
    body = prefix.rjust(2)
    values = [36 if c == " " else ord(c) - 55 for c in body] + [int(d) for d in digits]
    total = sum(v * w for v, w in zip(values, range(9, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    return "A" if check == 10 else str(check)


def synthetic_hkid(rng: random.Random) -> str:
    prefix = rng.choice("ABCDEGHKMPRVYZ") if rng.random() < 0.7 else "X" + rng.choice("ABC")
    digits = "".join(rng.choice("0123456789") for _ in range(6))
    return prefix + digits + hkid_check_digit(prefix, digits)


RNG = random.Random(20)  # issue 20
HKID = synthetic_hkid(RNG)
HKID_PRINTED = f"{HKID[:-1]}({HKID[-1]})"
MRN_A = "CA" + "".join(RNG.choice("0123456789") for _ in range(7))
MRN_B = "HB" + "".join(RNG.choice("0123456789") for _ in range(8))


def hl7(*segments: str) -> bytes:
    return ("\r".join(segments) + "\r").encode("utf-8")


MSH = "MSH|^~\\&|SYNTH-CMS|CLINIC-A|HUB|HUB|{ts}||{type}|{control}|P|2.5.1||||||UNICODE UTF-8"
PID_A = (
    f"PID|1||{MRN_A}^^^CLINIC-A^MR~{HKID_PRINTED}^^^HKG^NNHKG||CHAN^TAI MAN^^^MR^^L||19800101|M|||"
    "FLAT 1 SYNTHETIC HOUSE^1 EXAMPLE ROAD^KOWLOON^^^HKG^H||^PRN^CP^^^^^^^^^+85290000001"
)


def samples() -> dict[str, tuple[str, str, bytes]]:
    """name -> (media type, institution, bytes)."""
    out: dict[str, tuple[str, str, bytes]] = {}
    out["adt_a01.hl7"] = (
        "application/hl7-v2",
        "clinic-a",
        hl7(
            MSH.format(ts="20260105093000+0800", type="ADT^A01^ADT_A01", control="CA-0001"),
            "EVN|A01|20260105093000",
            PID_A,
            "PV1|1|I|W3^12^B^CLINIC-A||||ZZ10001^LEE^KA YAN^^^^^^MCHK|||MED||||||"
            "ZZ10002^HO^WING^^^^^^MCHK||V26-0001|||||||||||||||||||||||||20260105091500",
        ),
    )
    out["adt_a04.hl7"] = (
        "application/hl7-v2",
        "clinic-a",
        hl7(
            MSH.format(ts="20260106100000", type="ADT^A04^ADT_A01", control="CA-0002"),
            "EVN|A04|20260106100000",
            PID_A,
            "PV1|1|O|GOPC^^^CLINIC-A||||S123^CHEUNG^MEI||||||||||||V26-0002||||||||||||"
            "|||||||||||||20260106095500",
        ),
    )
    out["adt_a08.hl7"] = (
        "application/hl7-v2",
        "clinic-a",
        hl7(
            MSH.format(ts="202601071200", type="ADT^A08^ADT_A01", control="CA-0003"),
            "EVN|A08|202601071200",
            PID_A.replace("+85290000001", "+85290000002"),
            "PV1|1|N",
        ),
    )
    out["oru_r01.hl7"] = (
        "application/hl7-v2",
        "clinic-a",
        hl7(
            MSH.format(ts="20260108160000", type="ORU^R01^ORU_R01", control="CA-0004"),
            PID_A,
            "PV1|1|O|GOPC^^^CLINIC-A||||ZZ10001^LEE^KA YAN^^^^^^MCHK||||||||||||V26-0003",
            "ORC|RE|PL-778|FL-990",
            "OBR|1|PL-778|FL-990|24331-1^Lipid panel^LN|||20260108083000|||||||||"
            "ZZ10001^LEE^KA YAN||||||20260108153000|||F",
            "OBX|1|NM|2093-3^Cholesterol [Moles/volume] in Serum^LN||5.80|mmol/L^mmol/L^UCUM|"
            "<5.2|H|||F|||20260108083000",
            "NTE|1||Fasting sample \\T\\ repeat advised",
            "OBX|2|NM|2085-9^HDL Cholesterol^LN||1.30|mmol/L^mmol/L^UCUM|>1.0|N|||F",
            "OBX|3|SN|2571-8^Triglyceride^LN||<^0.50|mmol/L^mmol/L^UCUM|||||F",
            "OBX|4|ST|8251-1^Service comment^LN||Specimen slightly haemolysed||||||P",
            "OBR|2|PL-779|FL-991|883-9^ABO group^LN|||20260108083000||||||||||||||"
            "|20260108153000|||C",
            "OBX|1|CWE|883-9^ABO group^LN||112144000^Blood group A^SCT||||||C",
        ),
    )
    out["discharge_summary.cda.xml"] = (
        "application/cda+xml",
        "hospital-b",
        discharge_summary(),
    )
    out["scanned_letter.cda.xml"] = (
        "application/cda+xml",
        "hospital-b",
        scanned_letter(),
    )
    out["observation_r4.fhir-in.json"] = (
        "application/fhir+json; fhirVersion=4.0",
        "hospital-b",
        # 6.40 written with its trailing zero (a float would lose it): FHIR decimals keep digits.
        json.dumps(fhir_r4_bundle(), indent=2)
        .replace('"__DECIMAL_6.40__"', "6.40")
        .encode("utf-8"),
    )
    out["observation_r4b.fhir-in.json"] = (
        "application/fhir+json; fhirVersion=4.3",
        "clinic-a",
        json.dumps(fhir_r4b_observation(), indent=2).encode("utf-8"),
    )
    return out


def _cda_header(doc_id: str, code: str, display: str, title: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <realmCode code="HK"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <id root="2.25.92514407163651003305325016331434112917" extension="{doc_id}"/>
  <code code="{code}" codeSystem="2.16.840.1.113883.6.1" displayName="{display}"/>
  <title>{title}</title>
  <effectiveTime value="20260110143000+0800"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  <languageCode code="en-HK"/>
  <setId root="2.25.92514407163651003305325016331434112917" extension="{doc_id}-set"/>
  <versionNumber value="1"/>
  <recordTarget>
    <patientRole>
      <id root="2.25.115631129371402779524452417711116340145" extension="{MRN_B}"/>
      <id root="{HKID_OID}" extension="{HKID}"/>
      <addr use="H">
        <streetAddressLine>FLAT 1 SYNTHETIC HOUSE</streetAddressLine>
        <streetAddressLine>1 EXAMPLE ROAD</streetAddressLine>
        <city>KOWLOON</city>
        <country>HKG</country>
      </addr>
      <telecom use="MC" value="tel:+85290000001"/>
      <patient>
        <name use="L"><family>CHAN</family><given>TAI MAN</given></name>
        <administrativeGenderCode code="M" codeSystem="2.16.840.1.113883.5.1"/>
        <birthTime value="19800101"/>
      </patient>
    </patientRole>
  </recordTarget>
  <author>
    <time value="20260110143000+0800"/>
    <assignedAuthor>
      <id root="{MCHK_OID}" extension="ZZ20001"/>
      <assignedPerson><name><family>WONG</family><given>SIU FAN</given></name></assignedPerson>
    </assignedAuthor>
  </author>
  <custodian>
    <assignedCustodian>
      <representedCustodianOrganization>
        <id root="2.25.115631129371402779524452417711116340145"/>
        <name>Hospital B (synthetic)</name>
      </representedCustodianOrganization>
    </assignedCustodian>
  </custodian>"""


def discharge_summary() -> bytes:
    text = (
        _cda_header("DS-2026-0001", "18842-5", "Discharge summary", "Discharge Summary")
        + """
  <componentOf>
    <encompassingEncounter>
      <id root="2.25.115631129371402779524452417711116340145" extension="HB-ENC-0001"/>
      <code code="IMP" codeSystem="2.16.840.1.113883.5.4" displayName="inpatient encounter"/>
      <effectiveTime><low value="20260105091500+0800"/><high value="20260110120000+0800"/></effectiveTime>
    </encompassingEncounter>
  </componentOf>
  <component>
    <structuredBody>
      <component>
        <section>
          <code code="11535-2" codeSystem="2.16.840.1.113883.6.1" displayName="Hospital discharge Dx"/>
          <title>Discharge Diagnosis</title>
          <text><paragraph>Community-acquired pneumonia, resolved.</paragraph><list><item>Hypercholesterolaemia</item></list></text>
        </section>
      </component>
      <component>
        <section>
          <code code="30954-2" codeSystem="2.16.840.1.113883.6.1" displayName="Relevant diagnostic tests"/>
          <title>Results</title>
          <text><table><tbody><tr><td>CRP</td><td>12.5 mg/L</td></tr><tr><td>WBC</td><td>7.2 10*9/L</td></tr></tbody></table></text>
          <entry>
            <organizer classCode="BATTERY" moodCode="EVN">
              <statusCode code="completed"/>
              <component>
                <observation classCode="OBS" moodCode="EVN">
                  <id root="2.25.115631129371402779524452417711116340145" extension="OBS-1"/>
                  <code code="1988-5" codeSystem="2.16.840.1.113883.6.1" displayName="C reactive protein"/>
                  <statusCode code="completed"/>
                  <effectiveTime value="20260109080000+0800"/>
                  <value xsi:type="PQ" value="12.5" unit="mg/L"/>
                  <interpretationCode code="H" codeSystem="2.16.840.1.113883.5.83"/>
                  <referenceRange><observationRange><text>&lt;5 mg/L</text></observationRange></referenceRange>
                </observation>
              </component>
              <component>
                <observation classCode="OBS" moodCode="EVN">
                  <code code="6690-2" codeSystem="2.16.840.1.113883.6.1" displayName="Leukocytes"/>
                  <statusCode code="completed"/>
                  <effectiveTime value="20260109080000+0800"/>
                  <value xsi:type="PQ" value="7.20" unit="10*9/L"/>
                </observation>
              </component>
            </organizer>
          </entry>
          <entry>
            <observation classCode="OBS" moodCode="EVN">
              <code code="883-9" codeSystem="2.16.840.1.113883.6.1" displayName="ABO group"/>
              <statusCode code="completed"/>
              <value xsi:type="CD" code="112144000" codeSystem="2.16.840.1.113883.6.96" displayName="Blood group A"/>
            </observation>
          </entry>
        </section>
      </component>
      <component>
        <section>
          <code code="10183-2" codeSystem="2.16.840.1.113883.6.1" displayName="Discharge medications"/>
          <title>Discharge Medications</title>
          <text><list><item>Atorvastatin 20 mg nightly</item></list></text>
          <entry>
            <substanceAdministration classCode="SBADM" moodCode="INT">
              <consumable><manufacturedProduct><manufacturedMaterial><name>Atorvastatin</name></manufacturedMaterial></manufacturedProduct></consumable>
            </substanceAdministration>
          </entry>
        </section>
      </component>
    </structuredBody>
  </component>
</ClinicalDocument>
"""
    )
    return text.encode("utf-8")


def scanned_letter() -> bytes:
    letter = base64.b64encode(b"%PDF-1.4\n% synthetic referral letter, not a real PDF\n").decode()
    text = (
        _cda_header("RL-2026-0002", "57133-1", "Referral note", "Referral Letter")
        + f"""
  <component>
    <nonXMLBody>
      <text mediaType="application/pdf" representation="B64">{letter}</text>
    </nonXMLBody>
  </component>
</ClinicalDocument>
"""
    )
    return text.encode("utf-8")


def fhir_r4_bundle() -> dict[str, object]:
    patient = "urn:uuid:0b0e64a4-6d0d-4d1a-9d55-6a1d4a0d0001"
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": patient,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [
                        {
                            "type": {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                        "code": "MR",
                                    }
                                ]
                            },
                            "system": "urn:oid:2.25.115631129371402779524452417711116340145",
                            "value": MRN_B,
                        },
                        {
                            "system": "https://fhir.health-collab-hub.invalid/sid/hkid",
                            "value": HKID,
                        },
                    ],
                    "name": [{"family": "CHAN", "given": ["TAI MAN"]}],
                    "gender": "male",
                    "birthDate": "1980-01-01",
                },
            },
            {
                "fullUrl": "urn:uuid:0b0e64a4-6d0d-4d1a-9d55-6a1d4a0d0002",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {
                        "coding": [
                            {"system": "http://loinc.org", "code": "4548-4", "display": "HbA1c"}
                        ]
                    },
                    "subject": {"reference": patient},
                    "effectiveDateTime": "2026-01-09T08:00:00+08:00",
                    "valueQuantity": {
                        "value": "__DECIMAL_6.40__",
                        "unit": "%",
                        "system": "http://unitsofmeasure.org",
                        "code": "%",
                    },
                },
            },
        ],
    }


def fhir_r4b_observation() -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "subject": {
            "identifier": {
                "system": "https://fhir.health-collab-hub.invalid/sid/institution/clinic-a/mrn",
                "value": MRN_A,
            }
        },
        "effectiveDateTime": "2026-01-08T09:00:00+08:00",
        "valueQuantity": {
            "value": 128,
            "unit": "mm[Hg]",
            "system": "http://unitsofmeasure.org",
            "code": "mm[Hg]",
        },
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--golden", action="store_true", help="also write the golden outputs")
    args = parser.parse_args(argv)
    listed = []
    for name, (media_type, institution, body) in samples().items():
        (HERE / name).write_bytes(body)
        listed.append({"file": name, "media_type": media_type, "institution": institution})
    manifest = {
        "patient": {"hkid": HKID, "mrn": {"clinic-a": MRN_A, "hospital-b": MRN_B}},
        "samples": listed,
    }
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if args.golden:
        sys.path.insert(0, str(HERE.parents[3]))
        from app.interop import convert
        from app.interop.canonical import canonical_json

        for name, (media_type, institution, body) in samples().items():
            record = convert(body, media_type, institution=institution)
            golden = HERE / (name.split(".")[0] + ".fhir.json")
            golden.write_bytes(canonical_json(record.bundle_json(), indent=2) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
