"""The knowledge as FHIR artifacts (PlanDefinition, Library, ValueSets), `$apply`, and caching:
every resource valid R4 by fhir.resources and by HL7's JSON Schema."""

from __future__ import annotations

import base64
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask.testing import FlaskClient
from jsonschema import Draft6Validator, ValidationError

from service.assess import fhir
from service.knowledge import Knowledge
from service.settings import Settings
from service.web.app import create_app
from tests.support.assess import expected_for, post_bundle
from tests.support.paths import KNOWLEDGE, REALWORLD, SAMPLES

SCHEMA = REALWORLD / "schema" / "fhir.r4.schema.json"
PLAN = "/fhir/PlanDefinition/spinefoot-back-foot"
LIBRARY = "/fhir/Library/spinefoot-back-foot"
APPLY = f"{PLAN}/$apply"


@cache
def r4_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA.read_text())
    return schema


def _schema_ism(error: ValidationError) -> bool:
    """Where HL7's JSON Schema is stricter than R4 itself: it was generated from the 4.0.0
    build (no '4.0.1' in fhirVersion) and renders the extensible binding of
    Expression.language as an enum; R4 allows text/plain for the plain-text rule conditions."""
    path = list(error.absolute_path)
    return (path == ["fhirVersion"] and error.instance == "4.0.1") or (
        path[-2:] == ["expression", "language"] and error.instance == "text/plain"
    )


def assert_valid_r4(resource: dict[str, Any]) -> None:
    assert fhir.validate_resource(resource) == []
    validator = Draft6Validator(
        {"definitions": r4_schema()["definitions"], "$ref": f"#/definitions/{resource['resourceType']}"}
    )
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(resource) if not _schema_ism(e)
    ]
    assert errors == []


def get(client: FlaskClient, url: str) -> Any:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/fhir+json"
    return response.get_json()


@pytest.mark.parametrize(
    "url", [PLAN, LIBRARY, "/fhir/ValueSet", "/fhir/ValueSet/sciatica", "/fhir/metadata"]
)
def test_each_artifact_is_valid_r4(client: FlaskClient, url: str) -> None:
    resource = get(client, url)
    assert_valid_r4(resource)
    for entry in resource.get("entry", []):
        assert_valid_r4(entry["resource"])


def test_the_plan_definition_has_one_action_per_pathway(client: FlaskClient, kb: Knowledge) -> None:
    plan = get(client, PLAN)
    assert (plan["url"], plan["version"]) == (
        "http://spinefoot.org/fhir/PlanDefinition/spinefoot-back-foot",
        kb.version,
    )
    assert plan["type"]["coding"][0]["code"] == "eca-rule"
    assert [a["id"] for a in plan["action"]] == list(kb.pathways)
    emergency = plan["action"][0]
    assert emergency["priority"] == "stat"
    assert {t["name"] for t in emergency["trigger"]} == {"patient-view", "order-select", "order-sign"}
    conditions = [c["expression"]["expression"] for c in emergency["condition"]]
    assert any(text.startswith("P-EMERGENCY-CES: ") for text in conditions)
    assert all(c["expression"]["language"] == "text/plain" for c in emergency["condition"])
    nice = {
        "type": "citation",
        "label": "NICE-NG59",
        "url": "https://www.nice.org.uk/guidance/ng59",
        "display": kb.sources["NICE-NG59"].title,
    }
    assert nice in plan["relatedArtifact"]
    assert plan["library"] == [f"http://spinefoot.org/fhir/Library/spinefoot-back-foot|{kb.version}"]


def test_the_library_carries_the_yaml_and_the_data_requirements(client: FlaskClient) -> None:
    library = get(client, LIBRARY)
    files = {c["title"]: base64.b64decode(c["data"]) for c in library["content"]}
    assert files["manifest.yaml"] == (KNOWLEDGE / "manifest.yaml").read_bytes()
    assert {"orders.yaml", "rules.yaml", "valuesets/spinal.yaml"} <= set(files)
    assert all(c["contentType"] == "application/yaml" for c in library["content"])
    assert yaml.safe_load(files["manifest.yaml"])["version"] == library["version"]
    requirements = {r["type"]: r for r in library["dataRequirement"]}
    assert list(requirements) == [
        "Patient",
        "Condition",
        "Observation",
        "Procedure",
        "MedicationStatement",
        "MedicationRequest",
    ]
    published = {e["resource"]["url"] for e in get(client, "/fhir/ValueSet")["entry"]}
    for requirement in library["dataRequirement"][1:]:
        assert {f["valueSet"] for f in requirement["codeFilter"]} <= published
    assert {"path": "code", "valueSet": "http://spinefoot.org/fhir/ValueSet/sciatica"} in (
        requirements["Condition"]["codeFilter"]
    )
    assert requirements["MedicationRequest"]["codeFilter"][0]["path"] == "medication"


def test_every_concept_and_order_set_is_a_value_set_with_its_codes(
    client: FlaskClient, kb: Knowledge
) -> None:
    bundle = get(client, "/fhir/ValueSet")
    assert bundle["type"] == "searchset"
    assert bundle["total"] == len(kb.concepts) + len(kb.orders) == len(bundle["entry"])
    by_id = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    sciatica = by_id["sciatica"]
    listed = {(i["system"], c["code"]) for i in sciatica["compose"]["include"] for c in i.get("concept", [])}
    assert listed == {(c.system, c.code) for c in kb.concepts["sciatica"].codes}
    order = by_id["sciatica-medicine-order"]["compose"]["include"]
    assert [c["code"] for c in order[0]["concept"]] == ["25480", "187832", "8640"]
    assert get(client, "/fhir/ValueSet/lumbar-spine-imaging-order")["title"].startswith("Imaging")


def test_an_icd_category_is_included_with_its_descendants(client: FlaskClient) -> None:
    includes = get(client, "/fhir/ValueSet/history-of-cancer")["compose"]["include"]
    assert {
        "system": "http://hl7.org/fhir/sid/icd-10-cm",
        "filter": [{"property": "concept", "op": "is-a", "value": "Z85"}],
    } in includes


def test_value_sets_can_be_searched_by_canonical_url(client: FlaskClient, kb: Knowledge) -> None:
    url = "http://spinefoot.org/fhir/ValueSet/sciatica"
    found = get(client, f"/fhir/ValueSet?url={url}")
    assert [e["resource"]["id"] for e in found["entry"]] == ["sciatica"]
    assert get(client, f"/fhir/ValueSet?url={url}|{kb.version}")["total"] == 1
    none = get(client, f"/fhir/ValueSet?url={url}|0.0.1")
    assert none["total"] == 0 and "entry" not in none


def test_a_searched_url_is_tagged_by_its_digest_not_echoed(client: FlaskClient) -> None:
    odd = 'x"y\\z'
    response = client.get("/fhir/ValueSet", query_string={"url": odd})
    assert response.status_code == 200 and response.get_json()["total"] == 0
    assert odd not in response.headers["ETag"]
    other = client.get("/fhir/ValueSet", query_string={"url": "y"}).headers["ETag"]
    assert other != response.headers["ETag"] != client.get("/fhir/ValueSet").headers["ETag"]


@pytest.mark.parametrize("url", [f"{PLAN}x", "/fhir/Library/other", "/fhir/ValueSet/nothing"])
def test_an_unknown_artifact_is_a_404_operation_outcome(client: FlaskClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_the_capability_statement_lists_the_artifacts(client: FlaskClient) -> None:
    resources = {r["type"]: r for r in get(client, "/fhir/metadata")["rest"][0]["resource"]}
    assert {"RiskAssessment", "PlanDefinition", "Library", "ValueSet"} <= set(resources)
    assert resources["PlanDefinition"]["operation"][0]["name"] == "apply"
    assert {"code": "search-type"} in resources["ValueSet"]["interaction"]


# ---------------------------------------------------------------- caching


@pytest.mark.parametrize(
    "url", ["/cds-services", "/fhir/metadata", PLAN, LIBRARY, "/fhir/ValueSet", "/fhir/ValueSet/sciatica"]
)
def test_static_answers_are_tagged_and_a_matching_copy_is_304(client: FlaskClient, url: str) -> None:
    first = client.get(url)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "public, max-age=300"
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag
    stale = client.get(url, headers={"If-None-Match": '"something-else"'})
    assert stale.status_code == 200 and stale.data == first.data


def test_the_tag_changes_with_the_knowledge_version(knowledge_copy: Path) -> None:
    def tag(directory: Path) -> str:
        app = create_app(Settings(knowledge_dir=directory))
        return str(app.test_client().get("/fhir/metadata").headers["ETag"])

    before = tag(knowledge_copy)
    manifest = knowledge_copy / "manifest.yaml"
    text = manifest.read_text()
    bumped = re.sub(r"^version: \S+", "version: 99.0.0", text, count=1, flags=re.M)
    assert bumped != text
    manifest.write_text(bumped)
    assert tag(knowledge_copy) != before


def test_a_refused_discovery_is_never_tagged(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    app = create_app(
        Settings(
            knowledge_dir=KNOWLEDGE,
            cds_jwt=True,
            cds_jwt_issuers=("x",),
            cds_jwks=str(jwks),
            base_url="http://127.0.0.1",
            data_dir=tmp_path,
        )
    )
    response = app.test_client().get("/cds-services")
    assert response.status_code == 401 and "ETag" not in response.headers


# ---------------------------------------------------------------- $apply


def apply_request(sample: Path, subject: str | None = None) -> dict[str, Any]:
    bundle = json.loads(sample.read_text())
    patient = next(e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "subject", "valueString": subject or f"Patient/{patient}"},
            {"name": "data", "resource": bundle},
            {"name": "asOf", "valueDateTime": expected_for(sample)["asOf"]},
        ],
    }


@pytest.mark.parametrize("name", ["01-cauda-equina-acute", "04-l5-radiculopathy-conservative"])
def test_apply_gives_a_care_plan_with_the_assessment_and_its_actions(client: FlaskClient, name: str) -> None:
    sample = SAMPLES / f"{name}.json"
    response = client.post(APPLY, json=apply_request(sample), content_type="application/fhir+json")
    assert response.status_code == 200, response.get_data(as_text=True)
    plan = response.get_json()
    assert_valid_r4(plan)
    assert (plan["resourceType"], plan["status"], plan["intent"]) == ("CarePlan", "draft", "proposal")
    assert plan["instantiatesCanonical"][0].startswith(
        "http://spinefoot.org/fhir/PlanDefinition/spinefoot-back-foot|"
    )
    contained = {r["id"]: r for r in plan["contained"]}
    assessment = post_bundle(client, sample.read_bytes(), as_of=expected_for(sample)["asOf"]).get_json()
    assert contained["assessment"] == {
        **{k: v for k, v in assessment.items() if k != "text"},
        "id": "assessment",
    }
    assert plan["text"] == assessment["text"]  # contained resources have no narrative (dom-1)
    [action] = contained["recommendations"]["action"]
    pathway = expected_for(sample)["pathway"]
    assert action["code"][0]["coding"][0]["code"] == pathway
    assert action["action"][0]["resource"] == {"reference": "#assessment"}
    assert plan["activity"] == [{"reference": {"reference": "#recommendations"}}]
    assert (
        plan["subject"]
        == contained["recommendations"]["subject"]
        == {"reference": assessment["subject"]["reference"]}
    )


def test_apply_for_another_subject_than_the_data_is_422(client: FlaskClient) -> None:
    body = apply_request(SAMPLES / "04-l5-radiculopathy-conservative.json", "Patient/other")
    response = client.post(APPLY, json=body)
    assert response.status_code == 422
    assert "not the patient of data" in response.get_json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    ("drop", "status", "message"),
    [("data", 400, "parameter 'data'"), ("subject", 400, "parameter 'subject'")],
)
def test_apply_without_its_parameters_is_400(
    client: FlaskClient, drop: str, status: int, message: str
) -> None:
    body = apply_request(SAMPLES / "04-l5-radiculopathy-conservative.json")
    body["parameter"] = [p for p in body["parameter"] if p["name"] != drop]
    response = client.post(APPLY, json=body)
    assert response.status_code == status and message in response.get_data(as_text=True)


def test_apply_of_another_plan_or_not_json_is_refused(client: FlaskClient) -> None:
    body = apply_request(SAMPLES / "04-l5-radiculopathy-conservative.json")
    assert client.post(f"{PLAN}x/$apply", json=body).status_code == 404
    assert client.post(APPLY, data="x", content_type="text/plain").status_code == 415
    assert client.post(APPLY, data=b"[1]", content_type="application/json").status_code == 400
