"""Every endpoint and every error status of the contract (§1, §4)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.settings import Settings
from service.web.app import create_app
from tests.support.assess import post_bundle, summary
from tests.support.paths import ASSESS, KNOWLEDGE, SAMPLE_FILES

SAMPLE = next(s for s in SAMPLE_FILES if s.stem.startswith("01-"))


def bundle() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE.read_text())
    return data


def outcome(response: Any, status: int) -> list[dict[str, Any]]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/fhir+json"
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"]
    assert all(i["severity"] and i["code"] and i["diagnostics"] for i in body["issue"])
    issues: list[dict[str, Any]] = body["issue"]
    return issues


@pytest.mark.parametrize(
    "content_type",
    [
        "application/fhir+json",
        "application/json",
        "application/fhir+json; charset=utf-8",
        "application/fhir+json; fhirVersion=4.0",
        "application/json;charset=UTF-8",
    ],
)
def test_assess_accepts_fhir_and_plain_json(client: FlaskClient, content_type: str) -> None:
    response = post_bundle(client, bundle(), content_type=content_type)
    assert response.status_code == 200
    assert summary(response.get_json())["pathway"] == "emergency-assessment"
    assert response.headers["X-Request-ID"]


def test_parameters_body_with_as_of(client: FlaskClient) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "bundle", "resource": bundle()},
            {"name": "asOf", "valueDateTime": "2026-06-01T00:00:00Z"},
        ],
    }
    resource = post_bundle(client, body, as_of=None).get_json()
    assert resource["occurrenceDateTime"] == "2026-06-01T00:00:00Z"
    # three months on, the same red flags are no longer recent: urgent, not emergency
    assert summary(resource)["pathway"] == "urgent-specialist-referral"


def test_as_of_defaults_to_the_injected_clock(client: FlaskClient) -> None:
    resource = post_bundle(client, bundle(), as_of=None).get_json()
    assert resource["occurrenceDateTime"] == "2026-03-01T09:00:00Z"


def test_request_id_is_echoed(client: FlaskClient) -> None:
    response = client.post(
        ASSESS,
        data=json.dumps(bundle()),
        content_type="application/fhir+json",
        headers={"X-Request-ID": "r-1"},
    )
    assert response.headers["X-Request-ID"] == "r-1"


def test_metadata_names_the_operation_and_knowledge_version(client: FlaskClient) -> None:
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement
    from fhir.resources.R4B.operationdefinition import OperationDefinition

    response = client.get("/fhir/metadata")
    assert response.status_code == 200 and response.mimetype == "application/fhir+json"
    body = response.get_json()
    CapabilityStatement.model_validate(body)
    assert "4.1.0" in body["implementation"]["description"]
    operation = body["rest"][0]["resource"][0]["operation"][0]
    assert operation["name"] == "assess"
    definition = client.get("/fhir/OperationDefinition/assess").get_json()
    OperationDefinition.model_validate(definition)
    assert definition["url"] == operation["definition"]


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["version"] == "4.1.0"


def test_not_json_is_400(client: FlaskClient) -> None:
    issues = outcome(post_bundle(client, b"{not json"), 400)
    assert "not valid JSON" in issues[0]["diagnostics"]


def test_not_utf8_is_400(client: FlaskClient) -> None:
    issues = outcome(post_bundle(client, '{"resourceType": "Bundle"}'.encode("utf-16")), 400)
    assert "UTF-8" in issues[0]["diagnostics"]


def test_deeply_nested_json_is_400(client: FlaskClient) -> None:
    outcome(post_bundle(client, b"[" * 100_000 + b"]" * 100_000), 400)


@pytest.mark.parametrize("body", [{"resourceType": "Patient"}, [], "Bundle", {"a": 1}])
def test_json_that_is_not_bundle_or_parameters_is_400(client: FlaskClient, body: Any) -> None:
    outcome(post_bundle(client, body), 400)


def test_invalid_fhir_gives_one_issue_per_error_with_expression(client: FlaskClient) -> None:
    data = bundle()
    data["entry"][1]["resource"]["onsetDateTime"] = "yesterday"
    data["entry"][2]["resource"].pop("code")
    data["entry"][3]["resource"]["status"] = "bogus"
    issues = outcome(post_bundle(client, data), 400)
    expressions = {i["expression"][0] for i in issues}
    assert {
        "Bundle.entry[1].resource.onsetDateTime",
        "Bundle.entry[2].resource.code",
        "Bundle.entry[3].resource.status",
    } <= expressions
    assert any(i["code"] == "code-invalid" for i in issues)


def test_condition_status_outside_required_binding_is_400(client: FlaskClient) -> None:
    data = bundle()
    data["entry"][1]["resource"]["clinicalStatus"]["coding"][0]["code"] = "maybe"
    issues = outcome(post_bundle(client, data), 400)
    assert issues[0]["expression"] == ["Bundle.entry[1].resource.clinicalStatus"]


def test_bad_as_of_is_400(client: FlaskClient) -> None:
    issues = outcome(post_bundle(client, bundle(), as_of="next-tuesday"), 400)
    assert issues[0]["expression"] == ["asOf"]


def test_parameters_without_bundle_is_400(client: FlaskClient) -> None:
    body = {"resourceType": "Parameters", "parameter": [{"name": "asOf", "valueDateTime": "2026-01-01"}]}
    outcome(post_bundle(client, body), 400)


def test_unknown_resource_types_are_ignored_and_named(client: FlaskClient) -> None:
    data = bundle()
    data["entry"].append({"resource": {"resourceType": "Spaceship", "warp": 9}})
    response = post_bundle(client, data)
    assert response.status_code == 200
    assert any("1 Spaceship" in n["text"] for n in response.get_json()["note"])


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/fhir+json; charset=latin-1"]
)
def test_wrong_media_type_is_415(client: FlaskClient, content_type: str) -> None:
    outcome(post_bundle(client, bundle(), content_type=content_type), 415)


def test_body_over_the_limit_is_413() -> None:
    small = create_app(Settings(knowledge_dir=KNOWLEDGE, max_body_bytes=1000))
    issues = outcome(post_bundle(small.test_client(), bundle()), 413)
    assert "1000 bytes" in issues[0]["diagnostics"]


def test_two_subjects_is_422(client: FlaskClient) -> None:
    data = bundle()
    data["entry"][2]["resource"]["subject"] = {"reference": "Patient/someone-else"}
    outcome(post_bundle(client, data), 422)


def test_two_patients_is_422(client: FlaskClient) -> None:
    data = bundle()
    data["entry"].append(
        {"fullUrl": "urn:uuid:other", "resource": {"resourceType": "Patient", "id": "other"}}
    )
    outcome(post_bundle(client, data), 422)


def test_two_patients_under_one_full_url_are_not_merged(client: FlaskClient) -> None:
    data = bundle()
    patient = data["entry"][0]
    data["entry"].append(
        {
            "fullUrl": patient["fullUrl"],
            "resource": {"resourceType": "Patient", "id": "other", "birthDate": "1990-01-01"},
        }
    )
    issues = outcome(post_bundle(client, data), 400)
    assert issues[0]["expression"] == [f"Bundle.entry[{len(data['entry']) - 1}].fullUrl"]


def with_patient_identifier(data: dict[str, Any]) -> dict[str, Any]:
    data["entry"][0]["resource"]["identifier"] = [{"system": "urn:oid:1.2.3", "value": "MRN-1"}]
    return data


def test_a_subject_given_by_another_patients_identifier_is_422(client: FlaskClient) -> None:
    data = with_patient_identifier(bundle())
    data["entry"][1]["resource"]["subject"] = {"identifier": {"system": "urn:oid:1.2.3", "value": "MRN-2"}}
    issues = outcome(post_bundle(client, data), 422)
    assert issues[0]["expression"] == ["Bundle.entry.resource.subject"]


def test_a_subject_given_by_the_patients_own_identifier_counts(client: FlaskClient) -> None:
    data = with_patient_identifier(bundle())
    data["entry"][1]["resource"]["subject"] = {"identifier": {"system": "urn:oid:1.2.3", "value": "MRN-1"}}
    assert post_bundle(client, data).status_code == 200


def test_an_identifier_subject_without_a_patient_beside_a_reference_is_422(client: FlaskClient) -> None:
    data = bundle()
    del data["entry"][0]
    data["entry"][0]["resource"]["subject"] = {"identifier": {"value": "MRN-2"}}
    outcome(post_bundle(client, data), 422)


def test_unknown_path_is_404_and_wrong_method_405(client: FlaskClient) -> None:
    outcome(client.get("/fhir/Nothing"), 404)
    response = client.get(ASSESS)
    outcome(response, 405)
    assert "POST" in response.headers["Allow"]


def test_unexpected_failure_is_a_generic_500(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_: Any) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(app.extensions["spinefoot"].pipeline, "assess_body", explode)
    issues = outcome(post_bundle(client, bundle()), 500)
    assert "secret" not in json.dumps(issues) and "Traceback" not in json.dumps(issues)


# ---------------------------------------------------------------- inputs that were 500s


def _first(data: dict[str, Any], rtype: str) -> dict[str, Any]:
    resource: dict[str, Any] = next(
        e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == rtype
    )
    return resource


def _onset_age(data: dict[str, Any], value: float) -> None:
    condition = _first(data, "Condition")
    for name in ("onsetDateTime", "onsetPeriod", "onsetString"):
        condition.pop(name, None)
    condition["onsetAge"] = {"value": value, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"}


@pytest.mark.parametrize(
    "as_of", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001", "9999-12-31T23:59:59Z"]
)
def test_an_as_of_at_the_edge_of_the_calendar_is_400(client: FlaskClient, as_of: str) -> None:
    for body in (
        bundle(),
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "bundle", "resource": bundle()}, {"name": "asOf", "valueDateTime": as_of}],
        },
    ):
        issues = outcome(post_bundle(client, body, as_of=as_of), 400)
        assert issues[0]["expression"] == ["asOf"]


def test_an_onset_age_beyond_a_lifetime_is_400(client: FlaskClient) -> None:
    data = bundle()
    _onset_age(data, 1e300)
    issues = outcome(post_bundle(client, data), 400)
    assert issues[0]["expression"] == ["Bundle.entry[1].resource.onsetAge.value"]


def test_a_birth_date_near_year_9999_is_400(client: FlaskClient) -> None:
    data = bundle()
    data["entry"][0]["resource"]["birthDate"] = "9999-12-31"
    _onset_age(data, 40)
    issues = outcome(post_bundle(client, data), 400)
    assert issues[0]["expression"] == ["Bundle.entry[0].resource.birthDate"]


def test_a_4300_digit_quantity_is_400(client: FlaskClient) -> None:
    """Python's int-str limit: the JSON parses, but no float holds it (it failed when formatted)."""
    data = bundle()
    index = next(i for i, e in enumerate(data["entry"]) if e["resource"]["resourceType"] == "Observation")
    data["entry"][index]["resource"].update(valueQuantity={"value": 12345}, valueBoolean=None)
    del data["entry"][index]["resource"]["valueBoolean"]
    for name in ("valueCodeableConcept", "valueInteger"):
        data["entry"][index]["resource"].pop(name, None)
    body = json.dumps(data).replace("12345", "9" * 4300).encode()
    issues = outcome(post_bundle(client, body), 400)
    assert issues[0]["expression"] == [f"Bundle.entry[{index}].resource.valueQuantity.value"]


def test_a_lone_surrogate_in_an_unread_resource_type_is_400(client: FlaskClient) -> None:
    data = bundle()
    data["entry"].append({"resource": {"resourceType": "BasicXX"}})
    body = json.dumps(data).replace("BasicXX", "Basic\\udc00").encode()
    issues = outcome(post_bundle(client, body), 400)
    assert issues[0]["expression"] == [f"Bundle.entry[{len(data['entry']) - 1}].resource.resourceType"]


# ---------------------------------------------------------------- the time budget


class Ticks:
    """A fake clock for the budget: one second passes each time it is read."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return float(self.reads)


def test_a_request_over_its_time_budget_stops_early_with_503() -> None:
    app = create_app(Settings(knowledge_dir=KNOWLEDGE, request_budget=10))
    clock = app.extensions["spinefoot"].budget_clock = Ticks()
    data = bundle()
    data["entry"] = data["entry"] * 500  # 2,000 entries, one clock read each as validated
    response = post_bundle(app.test_client(), data)
    issues = outcome(response, 503)
    assert issues[0]["code"] == "too-costly" and "10 s of processing" in issues[0]["diagnostics"]
    assert response.headers["Retry-After"]
    assert clock.reads <= 13, "validation went on past the budget"


def test_a_request_within_its_budget_is_answered(client: FlaskClient) -> None:
    assert post_bundle(client, bundle()).status_code == 200
