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

from tests.conftest import REALWORLD, SAMPLE_FILES, expected_for, post_bundle, summary


@pytest.fixture(scope="module")
def r4_schema() -> Draft6Validator:
    schema = json.loads((REALWORLD / "schema" / "fhir.r4.schema.json").read_text())
    return Draft6Validator({"definitions": schema["definitions"],
                            "$ref": "#/definitions/RiskAssessment"})


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
    assert summary(assess(client, sample)) == {"pathway": expected["pathway"],
                                                "predictions": expected["predictions"]}


@pytest.mark.parametrize("sample", SAMPLE_FILES, ids=lambda p: p.stem)
def test_output_is_valid_r4(client: FlaskClient, sample: Path,
                            r4_schema: Draft6Validator) -> None:
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


def test_rationale_names_findings_resources_and_rules(client: FlaskClient) -> None:
    sample = next(s for s in SAMPLE_FILES if s.stem.startswith("04-"))
    resource = assess(client, sample)
    rationale = resource["prediction"][0]["rationale"]
    assert "Numbness (dorsum of foot, left) [urn:uuid:" in rationale
    assert "ROOT-L5-SENSORY" in rationale and "C-RADICULOPATHY" in rationale
    assert resource["prediction"][0]["outcome"]["text"] == "Lumbar radiculopathy, L5, left side"
    basis = {b["reference"] for b in resource["basis"]}
    assert all(ref.startswith("urn:uuid:") for ref in basis) and len(basis) >= 3


def test_notes_cite_guidance_safety_net_and_gaps(client: FlaskClient) -> None:
    sample = next(s for s in SAMPLE_FILES if s.stem.startswith("06-"))
    notes = [n["text"] for n in assess(client, sample)["note"]]
    assert any(n.startswith("Safety-netting:") for n in notes)
    assert any(n.startswith("Guidance") and "nice.org.uk/guidance/ng59" in n for n in notes)
    gaps = [n for n in notes if n.startswith("Data gap:")]
    assert any("Bladder function is not documented" in g for g in gaps)
    assert any("Saddle" in g for g in gaps)


def test_documented_absent_red_flags_are_not_gaps(client: FlaskClient) -> None:
    sample = next(s for s in SAMPLE_FILES if s.stem.startswith("04-"))
    notes = [n["text"] for n in assess(client, sample)["note"]]
    assert not [n for n in notes if "Bladder function" in n or "Saddle" in n or "Bowel" in n]


def test_ignored_inputs_are_named(client: FlaskClient) -> None:
    sample = next(s for s in SAMPLE_FILES if s.stem.startswith("19-"))
    resource = assess(client, sample)
    notes = " ".join(n["text"] for n in resource["note"])
    assert "status entered-in-error" in notes and "verificationStatus refuted" in notes
    assert "1 Encounter" in notes
    assert resource["subject"] == {"reference": "Patient/pat-42"}
    assert resource["occurrenceDateTime"] == "2026-03-01T09:00:00Z"
