"""Golden tests over fhir_samples/: each sample gives its expected pathway and predictions,
and every answer is valid R4 by fhir.resources and by HL7's JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.riskassessment import RiskAssessment
from flask.testing import FlaskClient
from jsonschema import Draft6Validator

from tests.support.assess import expected_for, post_bundle, summary
from tests.support.paths import REALWORLD, SAMPLE_FILES


@pytest.fixture(scope="module")
def r4_schema() -> Draft6Validator:
    schema = json.loads((REALWORLD / "schema" / "fhir.r4.schema.json").read_text())
    return Draft6Validator({"definitions": schema["definitions"], "$ref": "#/definitions/RiskAssessment"})


def assess(client: FlaskClient, sample: Path) -> dict[str, Any]:
    expected = expected_for(sample)
    response = post_bundle(client, sample.read_bytes(), as_of=expected["asOf"])
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/fhir+json"
    body: dict[str, Any] = response.get_json()
    return body


def test_there_are_enough_samples() -> None:
    assert len(SAMPLE_FILES) >= 15


@pytest.mark.parametrize("sample", SAMPLE_FILES, ids=lambda p: p.stem)
def test_sample_gives_expected_outcome(client: FlaskClient, sample: Path) -> None:
    expected = expected_for(sample)
    assert summary(assess(client, sample)) == {
        "pathway": expected["pathway"],
        "predictions": expected["predictions"],
    }


@pytest.mark.parametrize("sample", SAMPLE_FILES, ids=lambda p: p.stem)
def test_output_is_valid_r4(client: FlaskClient, sample: Path, r4_schema: Draft6Validator) -> None:
    resource = assess(client, sample)
    RiskAssessment.model_validate(resource)
    errors = sorted(r4_schema.iter_errors(resource), key=str)
    assert not errors, errors[0].message


@pytest.mark.parametrize("sample", SAMPLE_FILES, ids=lambda p: p.stem)
def test_same_input_and_as_of_give_identical_bytes(client: FlaskClient, sample: Path) -> None:
    expected = expected_for(sample)
    first = post_bundle(client, sample.read_bytes(), as_of=expected["asOf"]).get_data()
    second = post_bundle(client, sample.read_bytes(), as_of=expected["asOf"]).get_data()
    assert first == second


def test_every_pathway_and_conclusion_has_a_sample(kb: Any) -> None:
    pathways = {expected_for(s)["pathway"] for s in SAMPLE_FILES}
    outcomes = {p["outcome"] for s in SAMPLE_FILES for p in expected_for(s)["predictions"]}
    assert pathways == set(kb.pathways)
    assert outcomes == {c.outcome.code for c in kb.conclusions.values()}


def test_rationale_names_findings_plainly_and_rules_after_them(client: FlaskClient) -> None:
    sample = next(s for s in SAMPLE_FILES if s.stem.startswith("04-"))
    resource = assess(client, sample)
    rationale = resource["prediction"][0]["rationale"]
    assert rationale.startswith("Because of: Numbness (dorsum of foot, left), 2026-02-20, Observation;")
    assert "urn:uuid:" not in rationale
    reasons, rules = rationale.split(" Knowledge rules: ")
    assert "ROOT-L5-SENSORY" in rules and "C-RADICULOPATHY" in rules and "ROOT-" not in reasons
    assert resource["prediction"][0]["outcome"]["text"] == "Lumbar radiculopathy, L5, left side"


def test_basis_and_subject_are_durable_references(client: FlaskClient) -> None:
    sample = next(s for s in SAMPLE_FILES if s.stem.startswith("04-"))
    bundle = json.loads(sample.read_text())
    resource = assess(client, sample)
    ids = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
    basis = {b["reference"] for b in resource["basis"]}
    assert len(basis) >= 3 and basis <= ids  # Type/id, never the bundle's urn:uuid
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    assert resource["subject"]["reference"] == f"Patient/{patient['id']}"
    machine = [
        x["valueReference"]["reference"]
        for x in resource["prediction"][0]["extension"]
        if x["url"].endswith("/rationale-finding")
    ]
    assert set(machine) <= basis


def note_texts(resource: dict[str, Any], kind: str) -> list[str]:
    return [n["text"] for n in resource["note"] if n["extension"][0]["valueCoding"]["code"] == kind]


def test_notes_cite_guidance_safety_net_and_gaps(client: FlaskClient) -> None:
    sample = next(s for s in SAMPLE_FILES if s.stem.startswith("06-"))
    resource = assess(client, sample)
    assert note_texts(resource, "safety-net")
    assert any("nice.org.uk/guidance/ng59" in n for n in note_texts(resource, "guidance"))
    gaps = note_texts(resource, "data-gap")
    assert any("Bladder function is not documented" in g for g in gaps)
    assert any("Saddle" in g for g in gaps)


def test_documented_absent_red_flags_are_not_gaps(client: FlaskClient) -> None:
    sample = next(s for s in SAMPLE_FILES if s.stem.startswith("04-"))
    notes = [n["text"] for n in assess(client, sample)["note"]]
    assert not [n for n in notes if "Bladder function" in n or "Saddle" in n or "Bowel" in n]


def test_ignored_inputs_are_named(client: FlaskClient) -> None:
    sample = next(s for s in SAMPLE_FILES if s.stem.startswith("19-"))
    resource = assess(client, sample)
    notes = " ".join(note_texts(resource, "input-ignored"))
    assert "status entered-in-error" in notes and "verificationStatus refuted" in notes
    assert "1 Encounter" in notes
    assert resource["subject"] == {"reference": "Patient/pat-42"}
    assert resource["occurrenceDateTime"] == "2026-03-01T09:00:00Z"
