"""Relevance first (issue 13): resources whose codes the knowledge base does not use are not read.

Each case a red flag could hide in is read (validated, then used); what is skipped is counted in
one note, and skipping changes no fact: the same facts come out as when every resource is read.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from service.assess.dates import parse_instant
from service.assess.fact import FactSet
from service.assess.facts import build_facts
from service.assess.fhir import _plain_entry
from service.assess.intake import read_bundle
from service.assess.relevance import TEXT_ONLY, UNKNOWN, Relevance
from service.errors import SpinefootError
from service.knowledge import Knowledge
from tests.support.assess import post_bundle
from tests.support.paths import REALWORLD, SAMPLE_FILES, SAMPLES

AS_OF = parse_instant("2026-03-01T09:00:00Z")
LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
PATIENT = "urn:uuid:b0cb9f22-750c-3450-29cb-1a0532d1f750"  # sample 01's Patient
HEART_RATE = {"coding": [{"system": LOINC, "code": "8867-4", "display": "Heart rate"}]}
RETENTION = {"coding": [{"system": SCT, "code": "267064002", "display": "Retention of urine"}]}
SYNTHEA = sorted((REALWORLD / "synthea").glob("*/*.json"))
HL7_BUNDLES = sorted((REALWORLD / "hl7-r4-examples" / "Bundle").glob("*.json"))


def cauda_equina() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / "01-cauda-equina-acute.json").read_text())
    return data


def observation(code: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:00000000-0000-4000-8000-{len(json.dumps(fields)):012d}",
        "resource": {
            "resourceType": "Observation",
            "status": "final",
            "code": code,
            "subject": {"reference": PATIENT},
            "effectiveDateTime": "2026-02-28",
            **fields,
        },
    }


def with_entries(*entries: dict[str, Any]) -> dict[str, Any]:
    bundle = cauda_equina()
    bundle["entry"] += entries
    return bundle


def notes(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [n["text"] for n in response.get_json().get("note", [])]


def diagnostics(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 400, response.get_json()
    return [(i["diagnostics"], i.get("expression", [""])[0]) for i in response.get_json()["issue"]]


@pytest.fixture(scope="module")
def relevance(kb: Knowledge) -> Relevance:
    return Relevance(kb)


# ---------------------------------------------------------------- what is skipped, and said


def test_an_invalid_resource_with_unknown_codes_is_not_validated(client: FlaskClient) -> None:
    bogus = observation(HEART_RATE, status="bogus", valueQuantity={"value": "fast"})
    said = notes(post_bundle(client, with_entries(bogus)))
    assert "Not read (codes the knowledge base does not use): 1 Observation." in said


def test_unread_resources_are_counted_by_type_in_one_note(client: FlaskClient) -> None:
    rate = observation(HEART_RATE, valueQuantity={"value": 80, "unit": "/min"})
    extra = [copy.deepcopy(rate) for _ in range(3)]
    for i, entry in enumerate(extra):
        entry["fullUrl"] = f"urn:uuid:00000000-0000-4000-8000-{i:012d}"
    procedure = {
        "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000099",
        "resource": {
            "resourceType": "Procedure",
            "status": "completed",
            "subject": {"reference": PATIENT},
            "code": {"coding": [{"system": SCT, "code": "80146002", "display": "Appendectomy"}]},
        },
    }
    said = notes(post_bundle(client, with_entries(*extra, procedure)))
    assert [n for n in said if n.startswith("Not read (codes")] == [
        "Not read (codes the knowledge base does not use): 3 Observation, 1 Procedure."
    ]


def test_a_resource_coded_only_in_text_is_named_for_review(client: FlaskClient) -> None:
    text_only = observation({"text": "urine retention since Monday"})
    said = notes(post_bundle(client, with_entries(text_only)))
    assert ("Not read (coded only in text, which is not interpreted: review them): 1 Observation.") in said


def test_an_unread_resource_naming_another_patient_is_still_422(client: FlaskClient) -> None:
    stranger = observation(HEART_RATE, subject={"reference": "Patient/someone-else"})
    assert post_bundle(client, with_entries(stranger)).status_code == 422


def test_an_unread_resource_whose_stated_status_is_ignored_is_only_counted(client: FlaskClient) -> None:
    cancelled = observation(HEART_RATE, status="cancelled")
    said = notes(post_bundle(client, with_entries(cancelled)))
    assert not [n for n in said if n.startswith("Ignored")]


# ---------------------------------------------------------------- what is read, whatever it looks like


def test_an_invalid_resource_with_a_known_code_is_still_400(client: FlaskClient) -> None:
    broken = observation(RETENTION, status="bogus")
    found = diagnostics(post_bundle(client, with_entries(broken)))
    assert any(where == "Bundle.entry[4].resource.status" for _, where in found)


@pytest.mark.parametrize(
    "code",
    [
        {"coding": [{"system": SCT, "code": 267064002}]},  # a number for a code
        {"coding": {"system": SCT, "code": "267064002"}},  # one coding, not a list
        {"coding": ["267064002"]},
        "267064002",
    ],
    ids=["code-number", "coding-object", "coding-string", "concept-string"],
)
def test_a_coding_of_the_wrong_shape_is_read_and_reported(client: FlaskClient, code: Any) -> None:
    found = diagnostics(post_bundle(client, with_entries(observation(code))))
    assert all(where.startswith("Bundle.entry[4].resource.code") for _, where in found)


@pytest.mark.parametrize(
    "subject",
    [{"reference": 7}, "Patient/p1", {"identifier": "p1"}],
    ids=["reference-number", "string", "identifier-string"],
)
def test_a_subject_of_the_wrong_shape_is_read_and_reported(client: FlaskClient, subject: Any) -> None:
    found = diagnostics(post_bundle(client, with_entries(observation(HEART_RATE, subject=subject))))
    assert all(where.startswith("Bundle.entry[4].resource.subject") for _, where in found)


def test_a_resource_without_its_code_is_read_and_reported(client: FlaskClient) -> None:
    entry = observation(HEART_RATE)
    del entry["resource"]["code"]
    assert any(
        where == "Bundle.entry[4].resource.code"
        for _, where in diagnostics(post_bundle(client, with_entries(entry)))
    )


def test_a_known_component_under_an_unknown_code_is_read(relevance: Relevance) -> None:
    exam = observation(
        HEART_RATE,
        component=[{"code": HEART_RATE, "valueInteger": 80}, {"code": RETENTION, "valueBoolean": True}],
    )
    assert relevance.why_unread(exam["resource"]) is None


def test_red_flags_in_components_of_an_unknown_panel_decide_the_pathway(client: FlaskClient) -> None:
    bundle = cauda_equina()
    findings = bundle["entry"][2:]  # retention, saddle numbness: moved into a generic panel
    bundle["entry"][2:] = [
        observation(
            {"coding": [{"system": LOINC, "code": "8716-3"}]},
            component=[{"code": e["resource"]["code"]} for e in findings],
        )
    ]
    pathway = [
        e["valueCodeableConcept"]["coding"][0]["code"]
        for e in post_bundle(client, bundle).get_json()["extension"]
        if e["url"].endswith("care-pathway")
    ]
    assert pathway == ["emergency-assessment"]


def test_an_icd10cm_code_below_a_category_the_knowledge_covers_is_read(relevance: Relevance) -> None:
    condition: dict[str, Any] = {
        "resourceType": "Condition",
        "subject": {"reference": PATIENT},
        "code": {"coding": [{"system": ICD10CM, "code": "E11.42"}]},
    }
    assert relevance.why_unread(condition) is None
    condition["code"]["coding"][0]["code"] = "J45.909"  # asthma: nothing here reads it
    assert relevance.why_unread(condition) == UNKNOWN


def test_a_known_code_with_a_free_text_value_is_read_and_named_as_a_gap(client: FlaskClient) -> None:
    said = notes(
        post_bundle(client, with_entries(observation(RETENTION, valueString="patient unsure, recheck later")))
    )
    assert any("its text value says neither yes nor no" in n for n in said), said


def test_medicines_are_read_by_their_medication_code(relevance: Relevance) -> None:
    steroid = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "subject": {"reference": PATIENT},
        "medicationCodeableConcept": {"coding": [{"system": SCT, "code": "788751009"}]},
    }
    assert relevance.why_unread(steroid) is None
    steroid["medicationCodeableConcept"] = HEART_RATE
    assert relevance.why_unread(steroid) == UNKNOWN
    steroid["medicationCodeableConcept"] = {"text": "prednisolone 5 mg"}
    assert relevance.why_unread(steroid) == TEXT_ONLY
    del steroid["medicationCodeableConcept"]  # a medicationReference: validated as before
    assert relevance.why_unread(steroid) is None


def test_types_and_resources_without_a_coded_meaning_are_left_to_the_type_rules(relevance: Relevance) -> None:
    assert relevance.why_unread({"resourceType": "Patient"}) is None
    assert relevance.why_unread({"resourceType": "Encounter", "code": HEART_RATE}) is None


def test_a_panel_whose_members_matter_keeps_them_and_skips_itself(
    relevance: Relevance, kb: Knowledge
) -> None:
    bundle = cauda_equina()
    members = [{"reference": e["fullUrl"]} for e in bundle["entry"][2:]]
    bundle["entry"].append(observation(HEART_RATE, hasMember=members))
    bundle["entry"].append(
        observation(RETENTION, derivedFrom=[{"reference": bundle["entry"][-1]["fullUrl"]}], valueBoolean=True)
    )
    assert same_facts(bundle, kb, relevance)


# ---------------------------------------------------------------- skipping changes no fact


def same_facts(bundle: dict[str, Any], kb: Knowledge, relevance: Relevance) -> bool:
    def facts(record_relevance: Relevance | None) -> FactSet:
        return build_facts(read_bundle(copy.deepcopy(bundle), relevance=record_relevance), kb, AS_OF)

    everything, relevant = facts(None), facts(relevance)
    return (everything.facts, everything.documented, everything.unreadable, everything.notes) == (
        relevant.facts,
        relevant.documented,
        relevant.unreadable,
        relevant.notes,
    )


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_bytes())
    return data


def _assessable(path: Path) -> bool:
    try:
        read_bundle(_load(path))
    except SpinefootError:  # the corpus's 4xx bundles (two patients...): nothing to compare
        return False
    return True


@pytest.mark.parametrize(
    "path",
    [p for p in SAMPLE_FILES + SYNTHEA + HL7_BUNDLES if "parameters" not in p.name and _assessable(p)],
    ids=lambda p: p.name.split("_")[0],
)
def test_skipping_what_is_not_read_changes_no_fact(path: Path, kb: Knowledge, relevance: Relevance) -> None:
    assert same_facts(_load(path), kb, relevance)


def test_most_of_a_real_chart_is_not_read(relevance: Relevance) -> None:
    entries = [e["resource"] for path in SYNTHEA for e in _load(path)["entry"]]
    read = [r for r in entries if relevance.why_unread(r) is None and r["resourceType"] not in ("Patient",)]
    clinical = [
        r
        for r in entries
        if r["resourceType"]
        in ("Condition", "Observation", "Procedure", "MedicationStatement", "MedicationRequest")
    ]
    assert len(clinical) > 1000 and len([r for r in read if r in clinical]) < len(clinical) / 5


# ---------------------------------------------------------------- the envelope


def test_an_entry_skips_the_envelope_model_only_with_a_full_url_free_of_whitespace() -> None:
    """Every code point: the fullUrls that skip the model are those the regex `[^\\s]+` matches."""
    no_space = re.compile(r"[^\s]+")
    urls = ["", *(f"urn:x{chr(c)}" for c in range(0x110000))]
    skipping = [url for url in urls if _plain_entry({"fullUrl": url, "resource": {}})]
    assert skipping == [url for url in urls if no_space.fullmatch(url)]
    assert len(skipping) == 0x110000 - 29  # all but the empty one and the 29 whitespace code points


@pytest.mark.parametrize(
    "index, field, value", [(3, "fullUrl", 5), (2, "link", "not-a-list"), (1, "fullUrl", ["urn:uuid:1"])]
)
def test_an_entry_the_envelope_rejects_is_named_by_its_place(
    client: FlaskClient, index: int, field: str, value: Any
) -> None:
    bundle = cauda_equina()
    bundle["entry"][index][field] = value
    found = diagnostics(post_bundle(client, bundle))
    assert found and all(where.startswith(f"Bundle.entry[{index}].{field}") for _, where in found), found
