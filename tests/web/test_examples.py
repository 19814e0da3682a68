"""Examples people copy: the OpenAPI request examples (Swagger's "Try it out") and the samples
shipped as CDS Hooks requests (fhir_samples/cds-hooks/) give what their sample expects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from service.samples import cds_hooks_files
from service.web.cds.request import PREFETCH
from tests.support.assess import expected_for, summary
from tests.support.cds import INDICATOR
from tests.support.paths import ASSESS, SAMPLE_FILES, SAMPLES

CDS_FILES = cds_hooks_files()


def test_every_sample_is_an_assess_example(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    content = document["paths"]["/fhir/RiskAssessment/$assess"]["post"]["requestBody"]["content"]
    for media in ("application/fhir+json", "application/json"):
        examples = content[media]["examples"]
        assert sorted(examples) == [s.stem for s in SAMPLE_FILES]
        for sample in SAMPLE_FILES:
            assert examples[sample.stem]["value"] == json.loads(sample.read_text())
            assert expected_for(sample)["pathway"] in examples[sample.stem]["summary"]


@pytest.mark.parametrize("sample", SAMPLE_FILES, ids=lambda p: p.stem)
def test_an_example_sent_as_swagger_sends_it_is_answered(client: FlaskClient, sample: Path) -> None:
    document = client.get("/openapi.json").get_json()
    media = document["paths"]["/fhir/RiskAssessment/$assess"]["post"]["requestBody"]["content"]
    value = media["application/fhir+json"]["examples"][sample.stem]["value"]
    response = client.post(
        f"{ASSESS}?asOf={expected_for(sample)['asOf']}", json=value, content_type="application/fhir+json"
    )
    assert response.status_code == 200
    assert summary(response.get_json())["pathway"] == expected_for(sample)["pathway"]


def test_some_samples_are_shipped_as_cds_hooks_requests(client: FlaskClient) -> None:
    assert len(CDS_FILES) >= 3
    document = client.get("/openapi.json").get_json()
    examples = document["paths"]["/cds-services/{id}"]["post"]["requestBody"]["content"]["application/json"][
        "examples"
    ]
    assert sorted(examples) == [p.stem for p in CDS_FILES]


@pytest.mark.parametrize("request_file", CDS_FILES, ids=lambda p: p.stem)
def test_a_cds_hooks_sample_gives_its_samples_card(client: FlaskClient, request_file: Path) -> None:
    """At the samples' asOf (the test app's clock): CDS Hooks has no asOf of its own."""
    body = json.loads(request_file.read_text())
    entries = [e for v in body["prefetch"].values() if v for e in v.get("entry", [])]
    assert all("urn:uuid:" not in json.dumps(e["resource"]) for e in entries)  # as a server has it
    response = client.post("/cds-services/spinefoot-back-foot", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    pathway = expected_for(SAMPLES / request_file.name)["pathway"]
    cards = response.get_json()["cards"]
    assert [c["indicator"] for c in cards] == ([INDICATOR[pathway]] if pathway in INDICATOR else [])
    if cards:
        resource = cards[0]["suggestions"][0]["actions"][0]["resource"]
        assert summary(resource)["pathway"] == pathway


def test_the_documented_prefetch_keys_are_the_discovery_templates(client: FlaskClient) -> None:
    schema = client.get("/openapi.json").get_json()["components"]["schemas"]["CdsRequest"]
    assert set(schema["properties"]["prefetch"]["properties"]) == set(PREFETCH)
