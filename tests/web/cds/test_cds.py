"""CDS Hooks 2.0: discovery, service calls from prefetch and from a real FHIR server, cards, feedback."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.assess.explain import Note, Reason
from service.settings import Settings
from service.web.app import create_app
from service.web.cds.cards import DETAIL_LIMIT, OVERRIDE_SYSTEM, card_detail
from tests.support.assess import expected_for, post_bundle
from tests.support.cds import (
    HOOK_INSTANCE,
    INDICATOR,
    KEYS,
    SERVICE,
    hook_request,
    server_style,
)
from tests.support.cds_hooks_schema import CARDS_RESPONSE, DISCOVERY
from tests.support.paths import FIXED_NOW, KNOWLEDGE, REALWORLD, SAMPLE_FILES, SAMPLES

EXAMPLES = REALWORLD / "cds-hooks" / "spec_examples"


def assert_no_empty_values(node: Any, path: str = "$") -> None:
    """CDS Hooks clients choke on null and on empty strings, arrays and objects."""
    assert node is not None and node != "" and node != [] and node != {}, path
    if isinstance(node, dict):
        for key, value in node.items():
            assert_no_empty_values(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            assert_no_empty_values(value, f"{path}[{i}]")


# ---------------------------------------------------------------- discovery


def test_discovery_lists_the_services_with_prefetch_templates(client: FlaskClient) -> None:
    response = client.get("/cds-services")
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.get_json()
    jsonschema.validate(body, DISCOVERY)
    assert_no_empty_values(body)
    hooks = {s["id"]: s["hook"] for s in body["services"]}
    assert hooks == {
        "spinefoot-back-foot": "patient-view",
        "spinefoot-order-select": "order-select",
        "spinefoot-order-sign": "order-sign",
    }
    prefetch = body["services"][0]["prefetch"]
    assert prefetch["patient"] == "Patient/{{context.patientId}}"
    assert {template.split("?")[0] for template in prefetch.values()} >= {
        "Condition",
        "Observation",
        "Procedure",
        "MedicationStatement",
        "MedicationRequest",
    }


@pytest.mark.parametrize(
    "example",
    [
        "spec_examples/docs_specification_current_02_discovery.json",
        "spec_examples/docs_specification_current_31_discovery.json",
        "sandbox_cds_services/service-definitions.json",
    ],
)
def test_the_discovery_schema_accepts_the_specifications_examples(example: str) -> None:
    document = json.loads((EXAMPLES.parent / example).read_text())
    jsonschema.validate(document if isinstance(document, dict) else {"services": document}, DISCOVERY)


# ---------------------------------------------------------------- service calls from prefetch


@pytest.mark.parametrize("sample", SAMPLE_FILES, ids=lambda p: p.stem)
def test_every_sample_gives_the_card_of_its_pathway(client: FlaskClient, sample: Path) -> None:
    entries = server_style(sample)
    response = client.post(SERVICE, json=hook_request(entries))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    jsonschema.validate(body, CARDS_RESPONSE, format_checker=jsonschema.FormatChecker())
    pathway = expected_for(sample)["pathway"]
    if pathway not in INDICATOR:
        assert body == {"cards": []}  # nothing to say: no card, no alert fatigue
        return
    assert_no_empty_values(body)
    [card] = body["cards"]
    assert card["indicator"] == INDICATOR[pathway]
    assert card["source"]["topic"]["code"] == pathway
    assert card["source"]["url"].startswith("https://")
    assert len(card["detail"]) <= DETAIL_LIMIT and "**Safety-netting:**" in card["detail"]
    assert {r["code"] for r in card["overrideReasons"]} == {
        "already-addressed",
        "not-relevant",
        "patient-declined",
        "information-incorrect",
    }
    [suggestion] = card["suggestions"]
    [action] = suggestion["actions"]
    assert action["type"] == "create" and action["resource"]["resourceType"] == "RiskAssessment"


def test_the_card_carries_the_same_risk_assessment_as_assess(client: FlaskClient) -> None:
    sample = SAMPLES / "05-s1-radiculopathy-surgical.json"
    entries = server_style(sample)
    card = client.post(SERVICE, json=hook_request(entries)).get_json()["cards"][0]
    resource = card["suggestions"][0]["actions"][0]["resource"]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    assert resource == post_bundle(client, bundle).get_json()
    assert "Lumbar radiculopathy, S1" in card["detail"] and "ROOT-S1" not in card["detail"]
    assert "narrative" in card["detail"] and resource["text"]["status"] == "generated"
    assert card["summary"] == "Surgical consultation: Lumbar radiculopathy, S1, right side"


def test_the_same_call_gives_the_same_cards(client: FlaskClient) -> None:
    request = hook_request(server_style(SAMPLE_FILES[0]))
    first, second = (client.post(SERVICE, json=request).get_json() for _ in range(2))
    assert first == second
    other = client.post(SERVICE, json={**request, "hookInstance": str(uuid.uuid4())}).get_json()
    assert other["cards"][0]["uuid"] != first["cards"][0]["uuid"]


def test_partial_prefetch_with_nulls_is_enough_when_nothing_is_missing(client: FlaskClient) -> None:
    entries = server_style(SAMPLES / "01-cauda-equina-acute.json")
    request = hook_request(entries)
    for key in ("procedures", "medicationStatements", "medicationRequests"):
        request["prefetch"][key] = None  # the client had nothing for these
    assert client.post(SERVICE, json=request).get_json()["cards"][0]["indicator"] == "critical"


def test_order_select_is_served_too(client: FlaskClient) -> None:
    request = {**hook_request(server_style(SAMPLE_FILES[0])), "hook": "order-select"}
    response = client.post("/cds-services/spinefoot-order-select", json=request)
    assert response.get_json()["cards"][0]["indicator"] == "critical"


def test_no_data_at_all_gives_no_cards(client: FlaskClient) -> None:
    request = hook_request(server_style(SAMPLE_FILES[0]))
    request["prefetch"] = {key: None for key in request["prefetch"]}
    assert client.post(SERVICE, json=request).get_json() == {"cards": []}


# ---------------------------------------------------------------- bad requests


def error(response: Any, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    return str(body["issue"][0]["diagnostics"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hookInstance": "not-a-uuid"}, "hookInstance"),
        ({"hook": ""}, "hook"),
        ({"context": {"userId": "Practitioner/1"}}, "context.patientId"),
        ({"context": {"patientId": "a b/c"}}, "context.patientId"),
        (
            {
                "fhirAuthorization": {
                    "access_token": "t",
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "scope": "patient/*.read",
                    "subject": "spinefoot",
                }
            },
            "fhirServer",
        ),
        (
            {"fhirServer": "http://fhir.example.org", "fhirAuthorization": {"access_token": "t"}},
            "fhirAuthorization",
        ),
        ({"prefetch": {"patient": "Patient/1"}}, "prefetch.patient"),
    ],
)
def test_an_invalid_call_is_400_naming_the_member(
    client: FlaskClient, change: dict[str, Any], message: str
) -> None:
    request = {**hook_request(server_style(SAMPLE_FILES[0])), **change}
    assert message in error(client.post(SERVICE, json=request), 400)


def test_missing_prefetch_without_a_way_to_fetch_is_412(client: FlaskClient) -> None:
    request = hook_request(server_style(SAMPLE_FILES[0]))
    del request["prefetch"]["observations"]
    assert "prefetch lacks observations" in error(client.post(SERVICE, json=request), 412)


def test_a_fhir_server_not_allowed_is_never_contacted(client: FlaskClient) -> None:
    request = hook_request(
        server_style(SAMPLE_FILES[0]),
        fhirServer="http://169.254.169.254/fhir",
        fhirAuthorization={
            "access_token": "t",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "spinefoot",
        },
    )
    del request["prefetch"]["observations"]
    assert "may not fetch from" in error(client.post(SERVICE, json=request), 412)


def test_unknown_service_wrong_media_type(client: FlaskClient) -> None:
    error(client.post("/cds-services/nope", json={}), 404)
    error(client.post(SERVICE, data="{}", content_type="text/plain"), 415)
    error(client.post(SERVICE, data="{nope", content_type="application/json"), 400)


# ---------------------------------------------------------------- the specification's examples

# Requests from the specification, and what they get: none names a fhirServer this service may
# fetch from, so those that pass validation but lack our prefetch are 412 (CDS Hooks' answer when
# the data cannot be obtained); a request without context.patientId is 400.
SPEC_REQUESTS = [
    ("docs_examples_00_request.json", 412),  # order-sign, prefetch under another key
    ("docs_examples_02_request.json", 412),  # order-select, no prefetch, no authorization
    ("docs_quickstart_02_request.json", 412),  # prefetch under another service's key
    ("docs_specification_current_04_request.json", 412),  # fhirServer not allowed here
    ("docs_specification_current_30_request.json", 400),  # no context.patientId
]


@pytest.mark.parametrize(("example", "status"), SPEC_REQUESTS)
def test_the_specifications_requests(client: FlaskClient, example: str, status: int) -> None:
    response = client.post(SERVICE, json=json.loads((EXAMPLES / example).read_text()))
    assert response.status_code == status, response.get_data(as_text=True)


def test_a_request_with_a_documentation_placeholder_is_400(client: FlaskClient) -> None:
    snipped = json.loads((EXAMPLES / "docs_specification_current_13_prefetch.json").read_text())
    request = {
        "hook": "patient-view",
        "hookInstance": HOOK_INSTANCE,
        "context": {"patientId": "1288992"},
        **snipped,
    }
    message = error(client.post(SERVICE, json=request), 400)
    assert "placeholder ('...') at prefetch." in message


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*_response.json")))
def test_the_card_schema_against_the_specifications_responses(example: str) -> None:
    document = json.loads((EXAMPLES / example).read_text())
    reasons = {  # examples that show one attribute, or an older version of the specification
        "docs_specification_current_23_response.json": "'indicator' is a required property",
        "docs_quickstart_01_response.json": "'success' is not one of",
    }
    if example in reasons:
        with pytest.raises(jsonschema.ValidationError, match=reasons[example]):
            jsonschema.validate(document, CARDS_RESPONSE)
    else:
        jsonschema.validate(document, CARDS_RESPONSE)


# ---------------------------------------------------------------- fetching from a FHIR server


@pytest.fixture()
def fhir_server() -> Iterator[str]:
    """A real FHIR server process on loopback, paging 2 entries at a time, token 'secret'."""
    yield from _fhir_server()


@pytest.fixture()
def faulty_fhir_server() -> Iterator[str]:
    """The same, but its searches ignore `patient`: they return other patients' resources."""
    yield from _fhir_server("any-patient")


def _fhir_server(*options: str) -> Iterator[str]:
    sample = SAMPLES / "05-s1-radiculopathy-surgical.json"
    bundle = {"entry": server_style(sample)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fhir_server", "secret", "2", *options],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin and process.stdout
    process.stdin.write(json.dumps(bundle))
    process.stdin.close()
    port = process.stdout.readline().strip()
    try:
        yield f"http://127.0.0.1:{port}/fhir"
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def fetching_app(server: str, **settings: Any) -> FlaskClient:
    app = create_app(
        Settings(knowledge_dir=KNOWLEDGE, cds_fhir_servers=(server,), **settings), now=lambda: FIXED_NOW
    )
    return app.test_client()


def authorization(token: str = "secret") -> dict[str, Any]:
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "spinefoot",
    }


def asked(server: str) -> list[str]:
    with urllib.request.urlopen(server.removesuffix("/fhir") + "/requests", timeout=5) as r:
        paths: list[str] = json.loads(r.read())
        return paths


def test_what_is_not_prefetched_is_fetched_with_paging(fhir_server: str) -> None:
    entries = server_style(SAMPLES / "05-s1-radiculopathy-surgical.json")
    request = hook_request(entries, fhirServer=fhir_server, fhirAuthorization=authorization())
    request["prefetch"] = {"patient": request["prefetch"]["patient"]}  # the rest is fetched
    response = fetching_app(fhir_server).post(SERVICE, json=request)
    assert response.status_code == 200, response.get_data(as_text=True)
    [card] = response.get_json()["cards"]
    assert (
        card["source"]["topic"]["code"]
        == expected_for(SAMPLES / "05-s1-radiculopathy-surgical.json")["pathway"]
    )
    paths = asked(fhir_server)
    assert any("_page=1" in p for p in paths), paths  # more than one page was followed
    searches = {f"/fhir/{t}/_search" for t in KEYS}  # POSTed: no patient id in their URLs
    assert searches <= set(paths)
    assert {p.split("?")[0] for p in paths} <= searches | {f"/fhir/{t}" for t in KEYS}


def test_too_many_pages_is_412(fhir_server: str) -> None:
    entries = server_style(SAMPLES / "05-s1-radiculopathy-surgical.json")
    request = hook_request(entries, fhirServer=fhir_server, fhirAuthorization=authorization())
    request["prefetch"] = {}
    message = error(fetching_app(fhir_server, cds_fetch_max_pages=1).post(SERVICE, json=request), 412)
    assert "more than 1 pages" in message


def test_a_refused_token_is_412_and_not_echoed(fhir_server: str) -> None:
    entries = server_style(SAMPLES / "05-s1-radiculopathy-surgical.json")
    request = hook_request(
        entries, fhirServer=fhir_server, fhirAuthorization=authorization("wrong-token-123")
    )
    request["prefetch"] = {}
    message = error(fetching_app(fhir_server).post(SERVICE, json=request), 412)
    assert "answered 401" in message and "wrong-token-123" not in message


def test_without_a_token_only_an_open_server_is_asked(fhir_server: str) -> None:
    request = hook_request(
        server_style(SAMPLES / "05-s1-radiculopathy-surgical.json"), fhirServer=fhir_server
    )  # no fhirAuthorization, as the sandbox calls
    request["prefetch"] = {}
    message = error(fetching_app(fhir_server).post(SERVICE, json=request), 412)
    assert "without a token (allowed: SPINEFOOT_CDS_OPEN_FHIR_SERVERS)" in message
    assert asked(fhir_server) == []


def test_a_token_never_goes_to_a_server_that_is_only_open(fhir_server: str) -> None:
    request = hook_request(
        server_style(SAMPLES / "05-s1-radiculopathy-surgical.json"),
        fhirServer=fhir_server,
        fhirAuthorization=authorization(),
    )
    request["prefetch"] = {}
    app = create_app(
        Settings(knowledge_dir=KNOWLEDGE, cds_open_fhir_servers=(fhir_server,)), now=lambda: FIXED_NOW
    )
    message = error(app.test_client().post(SERVICE, json=request), 412)
    assert "with a token (allowed: SPINEFOOT_CDS_FHIR_SERVERS)" in message
    assert asked(fhir_server) == []


def test_an_unreachable_server_is_412() -> None:
    server = "http://127.0.0.1:9/fhir"  # the discard port: nothing listens
    request = hook_request(
        server_style(SAMPLE_FILES[0]), fhirServer=server, fhirAuthorization=authorization()
    )
    request["prefetch"] = {}
    assert "could not fetch" in error(fetching_app(server).post(SERVICE, json=request), 412)


# ---------------------------------------------------------------- never a card for another patient


def another_patients_condition(request: dict[str, Any], subject: Any) -> None:
    condition = {
        **request["prefetch"]["conditions"]["entry"][0]["resource"],
        "id": "c-other",
        "subject": subject,
    }
    request["prefetch"]["conditions"]["entry"].append({"resource": condition})


@pytest.mark.parametrize(
    "subject",
    [
        {"reference": "Patient/someone-else"},
        {"reference": "http://fhir.example.org/fhir/Patient/x"},
        {"identifier": {"value": "MRN-2"}},
        {},
        True,
    ],
    ids=["relative", "absolute", "identifier only", "none", "not an object"],
)
def test_a_prefetched_resource_about_another_patient_is_412(client: FlaskClient, subject: Any) -> None:
    request = hook_request(server_style(SAMPLE_FILES[0]))
    another_patients_condition(request, subject)
    message = error(client.post(SERVICE, json=request), 412)
    assert "1 resource(s) not about context.patientId (Condition/c-other)" in message


def test_a_prefetched_patient_other_than_the_context_is_412(client: FlaskClient) -> None:
    request = hook_request(server_style(SAMPLE_FILES[0]))
    request["context"]["patientId"] = "someone-else"
    assert "not about context.patientId" in error(client.post(SERVICE, json=request), 412)


def test_fetched_data_about_another_patient_is_412(faulty_fhir_server: str) -> None:
    entries = server_style(SAMPLES / "05-s1-radiculopathy-surgical.json")
    request = hook_request(entries, fhirServer=faulty_fhir_server, fhirAuthorization=authorization())
    request["prefetch"] = {"patient": None}
    request["context"]["patientId"] = "someone-else"
    response = fetching_app(faulty_fhir_server).post(SERVICE, json=request)
    assert "not about context.patientId" in error(response, 412)


# ---------------------------------------------------------------- feedback


def feedback(**item: Any) -> dict[str, Any]:
    return {
        "feedback": [
            {
                "card": "4332e027-e082-5a21-8cab-36e4eb4c702d",
                "outcomeTimestamp": "2026-03-01T09:05:00Z",
                **item,
            }
        ]
    }


def test_feedback_is_counted_and_logged_without_the_comment(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    client = app.test_client()
    accepted = feedback(outcome="accepted", acceptedSuggestions=[{"id": "x"}])
    overridden = feedback(
        outcome="overridden",
        overrideReason={
            "reason": {"code": "not-relevant", "system": OVERRIDE_SYSTEM},
            "userComment": "Patient Zebedee declined",
        },
    )
    with caplog.at_level("INFO", logger="spinefoot"):
        for body in (accepted, overridden, overridden):
            response = client.post(SERVICE + "/feedback", json=body)
            assert response.status_code == 200 and response.get_data() == b""
    assert "cds feedback" in caplog.text and "Zebedee" not in caplog.text
    metrics = client.get("/metrics").get_data(as_text=True)
    assert ('spinefoot_cds_feedback_total{outcome="overridden",service="spinefoot-back-foot"} 2.0') in metrics


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"feedback": []},
        feedback(outcome="ignored"),
        feedback(outcome="accepted"),
        feedback(
            outcome="overridden", overrideReason={"reason": {"code": "bored", "system": OVERRIDE_SYSTEM}}
        ),
        feedback(
            outcome="overridden",
            overrideReason={"reason": {"code": "not-relevant", "system": "http://example.org"}},
        ),
        {"feedback": [{"outcome": "overridden", "outcomeTimestamp": "2026-03-01T09:05:00Z"}]},
        feedback(outcome="overridden", card="x" * 100_000),
        feedback(outcome="overridden", card="4332e027-e082-5a21-8cab-36e4eb4c702d\nforged log line"),
        feedback(outcome="overridden", card="Patient Zebedee"),
        {"feedback": feedback(outcome="overridden")["feedback"] * 101},
    ],
    ids=[
        "empty",
        "no items",
        "bad outcome",
        "accepted without suggestions",
        "reason not offered",
        "reason from another system",
        "no card",
        "huge card",
        "card with a newline",
        "card naming a patient",
        "101 items",
    ],
)
def test_invalid_feedback_is_400(client: FlaskClient, body: dict[str, Any]) -> None:
    error(client.post(SERVICE + "/feedback", json=body), 400)


def test_cors_preflight_for_a_browser_cds_client() -> None:
    app = create_app(Settings(knowledge_dir=KNOWLEDGE, cors_origins=("https://sandbox.cds-hooks.org",)))
    response = app.test_client().options(
        SERVICE,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert response.headers["Access-Control-Allow-Origin"] == "https://sandbox.cds-hooks.org"
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()


def test_a_long_detail_gives_way_but_keeps_the_safety_net(app: Flask) -> None:
    """Many long reasons and gaps: fewer reasons, then a count of the gaps, never the advice."""
    pipeline = app.extensions["spinefoot"].pipeline
    sample = next(s for s in SAMPLE_FILES if expected_for(s)["pathway"] in INDICATOR)
    explanation = pipeline.assess_body(
        sample.read_bytes(), expected_for(sample)["asOf"], lambda: FIXED_NOW
    ).explanation
    long = Reason("A finding with a very long description " * 4, "Observation", "2026-02-01", None)
    gap = Note("data-gap", "clinician", "Something long enough to matter " * 3 + "is not documented.")
    crowded = dataclasses.replace(
        explanation,
        notes=explanation.notes + (gap,) * 8,
        findings=tuple(dataclasses.replace(f, reasons=(long,) * 9) for f in explanation.findings) * 3,
    )
    detail = card_detail(crowded)
    assert len(detail) <= DETAIL_LIMIT
    assert explanation.pathway.safety_net in detail and explanation.pathway.mitigation in detail
    assert all(f.title in detail for f in crowded.findings)
