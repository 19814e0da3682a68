"""What health-IT staff rely on in-process: settings, logs, metrics, OpenAPI, readiness, CORS, limits."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from service.cli import main
from service.logs import logging_config
from service.settings import Settings, SettingsError, load_settings, settings_table
from service.web.apidocs import openapi_document
from service.web.app import create_app, load_pipeline
from tests.support.assess import post_bundle
from tests.support.paths import ASSESS, FIXED_NOW, KNOWLEDGE, ROOT, SAMPLES

SAMPLE = SAMPLES / "01-cauda-equina-acute.json"


def sample() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE.read_text())
    return data


@pytest.fixture()
def fresh_app() -> Flask:
    """An app of its own, so that its metrics start from zero."""
    return create_app(Settings(knowledge_dir=KNOWLEDGE), now=lambda: FIXED_NOW)


# ---------------------------------------------------------------- settings


def test_flags_override_the_environment() -> None:
    settings = load_settings(
        {
            "SPINEFOOT_PORT": "9000",
            "SPINEFOOT_WORKERS": "3",
            "SPINEFOOT_LOG_LEVEL": "debug",
            "SPINEFOOT_CORS_ORIGINS": "https://ehr.example.org, http://localhost:3000",
            "SPINEFOOT_BASE_URL": "https://cds.example.org/spinefoot/",
            "SPINEFOOT_WORKER_CONNECTIONS": "",
        },
        {"port": "9100", "workers": None},
    )
    assert (settings.port, settings.workers, settings.worker_connections) == (9100, 3, 1000)
    assert settings.log_level == "DEBUG"
    assert settings.cors_origins == ("https://ehr.example.org", "http://localhost:3000")
    assert settings.base_url == "https://cds.example.org/spinefoot"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SPINEFOOT_PORT", "0", "greater than or equal to 1"),
        ("SPINEFOOT_WORKERS", "many", "Not a valid integer"),
        ("SPINEFOOT_LOG_FORMAT", "xml", "Must be one of"),
        ("SPINEFOOT_KNOWLEDGE_DIR", "/nonexistent/knowledge", "is not a directory"),
        ("SPINEFOOT_BASE_URL", "cds.example.org", "absolute http(s) URL"),
        ("SPINEFOOT_CORS_ORIGINS", "https://ehr.example.org/app", "is not an origin"),
        ("SPINEFOOT_MAX_BODY_BYTES", "-5", "greater than or equal to 1024"),
    ],
)
def test_a_bad_setting_names_its_variable_and_flag(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=variable) as caught:
        load_settings({variable: value})
    assert message in str(caught.value)
    assert "--" + variable.removeprefix("SPINEFOOT_").lower().replace("_", "-") in str(caught.value)


def test_serve_exits_2_on_a_bad_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SPINEFOOT_REQUEST_TIMEOUT", "forever")
    assert main(["serve"]) == 2
    assert "SPINEFOOT_REQUEST_TIMEOUT (--request-timeout)" in capsys.readouterr().err


def test_the_readme_table_is_the_declared_settings() -> None:
    assert settings_table() in (ROOT / "README.md").read_text()


# ---------------------------------------------------------------- logs

# Everything a bundle can carry about a person, in every place a value can hide.
SECRETS = (
    "Zebedee",
    "Quixote",
    "1961-07-04",
    "MRN-7731",
    "555-0199",
    "Rue Morgue",
    "wife says he fell off the ladder",
    "Dr Hollis",
)


def bundle_full_of_patient_data() -> dict[str, Any]:
    data = sample()
    patient = data["entry"][0]["resource"]
    patient.update(
        name=[{"family": "Zebedee", "given": ["Quixote"]}],
        birthDate="1961-07-04",
        identifier=[{"system": "urn:mrn", "value": "MRN-7731"}],
        telecom=[{"system": "phone", "value": "555-0199"}],
        address=[{"line": ["13 Rue Morgue"]}],
        text={"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Zebedee</div>'},
    )
    condition = data["entry"][1]["resource"]
    condition["note"] = [{"text": "wife says he fell off the ladder", "authorString": "Dr Hollis"}]
    return data


@pytest.fixture()
def log_lines() -> Iterator[io.StringIO]:
    """The app's log through the production JSON configuration, into a buffer."""
    stream = io.StringIO()
    config = logging_config("INFO", "json")
    config["handlers"]["stderr"] = {
        "class": "logging.StreamHandler",
        "formatter": "spinefoot",
        "stream": stream,
    }
    logging.config.dictConfig(config)
    yield stream
    logging.config.dictConfig(
        {"version": 1, "disable_existing_loggers": False, "root": {"handlers": [], "level": "WARNING"}}
    )


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_line_per_request_with_its_fields(fresh_app: Flask, log_lines: io.StringIO) -> None:
    response = post_bundle(fresh_app.test_client(), sample())
    [line] = [r for r in records(log_lines) if r["message"] == "request"]
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert (line["method"], line["path"], line["status"]) == ("POST", ASSESS, 200)
    assert line["entries"] == 4 and line["care_pathway"] == "emergency-assessment"
    assert line["knowledge_version"] == "4.1.0" and line["duration_ms"] > 0
    assert line["level"] == "INFO" and line["time"]


@pytest.mark.parametrize("case", ["assessed", "invalid", "crashed"])
def test_no_patient_data_reaches_the_log(
    fresh_app: Flask, log_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    data = bundle_full_of_patient_data()
    if case == "invalid":  # a validation error quotes the bad value back to the client only
        data["entry"][0]["resource"]["birthDate"] = "Zebedee Quixote 1961-07-04"
    if case == "crashed":

        def explode(*_: Any) -> None:
            raise RuntimeError("while reading Zebedee Quixote MRN-7731")

        monkeypatch.setattr(fresh_app.extensions["spinefoot"].pipeline, "assess_bundle", explode)
    response = post_bundle(fresh_app.test_client(), data)
    assert response.status_code == {"assessed": 200, "invalid": 400, "crashed": 500}[case]
    text = log_lines.getvalue()
    assert '"message": "request"' in text
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.parametrize(
    ("offered", "kept"),
    [
        ("ehr-1234.abc:9", True),
        ("", False),
        ("has spaces", False),
        ("x" * 129, False),
        ("Zebedee <script>", False),
    ],
)
def test_request_id_is_kept_only_when_safe(client: FlaskClient, offered: str, kept: bool) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": offered})
    echoed = response.headers["X-Request-ID"]
    assert (echoed == offered) is kept
    assert 1 <= len(echoed) <= 128 and "\n" not in echoed


# ---------------------------------------------------------------- metrics


def metric_samples(client: FlaskClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for s in family.samples
    }


def test_metrics_count_requests_pathways_rules_and_errors(fresh_app: Flask) -> None:
    client = fresh_app.test_client()
    for _ in range(3):
        post_bundle(client, sample())
    post_bundle(client, b"{nope")
    client.get("/nowhere")
    values = metric_samples(client)
    ok = frozenset({("route", ASSESS), ("method", "POST"), ("status", "200")})
    assert values[("spinefoot_http_requests_total", ok)] == 3
    assert values[("spinefoot_http_request_duration_seconds_count", ok)] == 3
    assert (
        values[
            (
                "spinefoot_http_requests_total",
                frozenset({("route", ASSESS), ("method", "POST"), ("status", "400")}),
            )
        ]
        == 1
    )
    assert values[("spinefoot_assessments_total", frozenset({("pathway", "emergency-assessment")}))] == 3
    assert values[("spinefoot_rule_evaluation_duration_seconds_count", frozenset())] == 3
    assert values[("spinefoot_rules_fired_total", frozenset({("rule", "C-CES")}))] == 3
    assert values[("spinefoot_errors_total", frozenset({("kind", "invalid-request")}))] == 1
    assert values[("spinefoot_errors_total", frozenset({("kind", "not-found")}))] == 1
    assert (
        values[
            (
                "spinefoot_http_requests_total",
                frozenset({("route", "unmatched"), ("method", "GET"), ("status", "404")}),
            )
        ]
        == 1
    )


def test_metrics_content_type_is_the_client_librarys_exposition_format(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST  # one charset, not two
    assert any(
        family.name == "spinefoot_http_requests"
        for family in text_string_to_metric_families(response.get_data(as_text=True))
    )


def test_a_flood_of_odd_methods_and_paths_leaves_metrics_the_same_size(fresh_app: Flask) -> None:
    """Labels are closed sets: an invented method counts as `other`, an unknown path as
    `unmatched`; a client cannot create series (20,000 such requests once made 38 MB)."""
    client = fresh_app.test_client()

    def flood(first: int, count: int) -> None:
        for i in range(first, first + count):
            client.open(f"/x{i}", method=f"M{i}")
            client.open(f"/fhir/RiskAssessment/$assess/{i}", method="POST")
            client.open(ASSESS, method=f"PURGE{i}")

    flood(0, 1)
    client.get("/metrics")
    before = metric_samples(client)
    flood(1, 300)
    after = metric_samples(client)
    assert after.keys() == before.keys()  # the same series, only their values grew
    assert (
        "spinefoot_http_requests_total",
        frozenset({("route", "unmatched"), ("method", "other"), ("status", "404")}),
    ) in after


# ---------------------------------------------------------------- OpenAPI and the docs page


def test_openapi_document_is_valid_and_covers_every_route(app: Flask, client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    served = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule).replace("{service_id}", "{id}"), method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    assert served - documented <= {("/docs/assets/{name}", "GET")}  # the page's own files
    assert documented <= served


def test_openapi_servers_follow_the_base_url() -> None:
    assert openapi_document(None)["servers"] == [{"url": "/"}]
    assert openapi_document("https://cds.example.org/sf")["servers"] == [
        {"url": "https://cds.example.org/sf"}
    ]


def test_the_docs_page_and_its_assets_are_served_locally(client: FlaskClient) -> None:
    page = client.get("/docs").get_data(as_text=True)
    assert "https://" not in page and "//cdn" not in page  # no CDN
    for asset in ("docs/assets/css/swagger-ui.css", "docs/assets/js/swagger-ui-bundle.js"):
        assert asset in page
        with client.get("/" + asset) as response:
            assert response.status_code == 200 and len(response.get_data()) > 10_000
    assert client.get("/docs/assets/../openapi.yaml").status_code == 404


# ---------------------------------------------------------------- readiness


def test_not_ready_until_the_knowledge_base_is_loaded() -> None:
    app = create_app(Settings(knowledge_dir=KNOWLEDGE), now=lambda: FIXED_NOW, load=False)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503
    response = post_bundle(client, sample())
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json()["issue"][0]["code"] == "transient"
    load_pipeline(app)
    assert client.get("/readyz").get_json() == {
        "status": "ready",
        "knowledge": "spinefoot-back-foot",
        "version": "4.1.0",
    }
    assert post_bundle(client, sample()).status_code == 200


# ---------------------------------------------------------------- CORS


def test_cors_answers_preflight_for_configured_origins_only() -> None:
    app = create_app(Settings(knowledge_dir=KNOWLEDGE, cors_origins=("https://ehr.example.org",)))
    client = app.test_client()
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "Content-Type"}
    allowed = client.options(ASSESS, headers={"Origin": "https://ehr.example.org", **preflight})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://ehr.example.org"
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    other = client.options(ASSESS, headers={"Origin": "https://evil.example.com", **preflight})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_no_cors_headers_unless_configured(client: FlaskClient) -> None:
    response = client.get("/fhir/metadata", headers={"Origin": "https://ehr.example.org"})
    assert "Access-Control-Allow-Origin" not in response.headers


# ---------------------------------------------------------------- limits and base URL


def test_too_many_entries_is_413() -> None:
    client = create_app(Settings(knowledge_dir=KNOWLEDGE, max_bundle_entries=3)).test_client()
    response = post_bundle(client, sample())
    assert response.status_code == 413
    assert response.get_json()["issue"][0]["expression"] == ["Bundle.entry"]


def test_too_deep_json_is_400(client: FlaskClient) -> None:
    data = sample()
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(100):
        node["x"] = {}
        node = node["x"]
    data["entry"][0]["resource"]["extension"] = [{"url": "urn:x", "valueString": "a", "y": deep}]
    response = post_bundle(client, data)
    assert response.status_code == 400
    assert "nested more than 64" in response.get_json()["issue"][0]["diagnostics"]


def test_capability_statement_names_the_base_url() -> None:
    app = create_app(Settings(knowledge_dir=KNOWLEDGE, base_url="https://cds.example.org"))
    statement = app.test_client().get("/fhir/metadata").get_json()
    assert statement["implementation"]["url"] == "https://cds.example.org/fhir"


def test_check_knowledge_validates_a_site_directory(
    knowledge_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-knowledge", str(knowledge_copy)]) == 0
    assert "valid" in capsys.readouterr().out
    (knowledge_copy / "valuesets" / "local.yaml").write_text(
        "kind: clinical\nconcepts:\n  numbness:\n    display: Numbness\n    codes:\n"
        "      - {system: sct, code: '1', display: x, tag: U, ref: GPS}\n"
    )
    assert main(["check-knowledge", str(knowledge_copy)]) == 2
    assert "valuesets/local.yaml: concepts.numbness.codes.0.tag" in capsys.readouterr().err
