"""The FHIR client against a hostile upstream on loopback: bounded bytes, time, depth and paths."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import PreconditionFailed
from service.logs import logging_config
from service.settings import Settings
from service.web.app import create_app
from service.web.cds.fhir_client import FetchLimits, FhirClient, same_server
from tests.support.cds import SERVICE, hook_request, server_style
from tests.support.hostile import Hostile, hostile_server
from tests.support.paths import FIXED_NOW, KNOWLEDGE, SAMPLE_FILES


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with hostile_server() as url:
        yield url


LIMITS = FetchLimits(timeout=2.0, max_pages=5, max_bytes=1 << 20, deadline=1.5)


def fetch(base: str, query: str) -> str:
    started = time.monotonic()
    with FhirClient(base, "token", LIMITS) as client, pytest.raises(PreconditionFailed) as error:
        client.get(query)
    assert time.monotonic() - started < 5, "the call was not bounded"
    return str(error.value.issues[0].diagnostics)


def test_an_answer_over_the_byte_cap_is_412(upstream: str) -> None:
    assert "exceed the 1048576 bytes allowed" in fetch(f"{upstream}/huge", "Patient/1")


@pytest.mark.slow  # waits out a real timeout
def test_a_trickling_answer_runs_into_the_calls_deadline(upstream: str) -> None:
    assert "longer than the 1.5 s allowed" in fetch(f"{upstream}/slow", "Patient/1")


def test_json_nested_past_the_limit_is_412_not_a_crash(upstream: str) -> None:
    assert "is not a FHIR resource" in fetch(f"{upstream}/deep", "Patient/1")


@settings(max_examples=40, deadline=None)
@given(
    depth=st.integers(1, 3000),
    opener=st.sampled_from(["[", '{"a": ']),
    inside=st.sampled_from(['"resourceType": "Patient", ', ""]),
)
def test_upstream_json_of_any_depth_is_a_resource_or_412(
    upstream: str, depth: int, opener: str, inside: str
) -> None:
    closer = "]" if opener == "[" else "}"
    Hostile.echo = ("{" + inside + '"x": ' + opener * depth + "1" + closer * depth + "}").encode()
    with FhirClient(f"{upstream}/echo", "token", LIMITS) as client:
        try:
            entries = client.get("Patient/1")
        except PreconditionFailed:  # the only failure allowed: never a RecursionError, a 500
            assert depth >= 63 or not inside
        else:
            assert depth < 64
            assert entries[0]["resource"].get("resourceType") == ("Patient" if inside else None)


def test_a_next_link_climbing_out_of_the_base_is_never_followed(upstream: str) -> None:
    Hostile.asked.clear()
    assert "on another server" in fetch(f"{upstream}/next-up", "Condition?patient=1")
    assert not any("admin" in path for path in Hostile.asked)


@pytest.mark.parametrize(
    "url",
    [
        "http://h/fhir/../admin",
        "http://h/fhir/%2e%2e/admin",
        "http://h/fhir/./x/../../admin",
        "http://h/fhir/%2E%2E%2Fadmin",
        "http://h/fhir/..\\admin",
        "http://h/fhirx/Patient",
    ],
)
def test_paths_outside_the_allowed_base_are_not_the_same_server(url: str) -> None:
    assert not same_server(url, "http://h/fhir")


def test_paths_under_the_base_are(upstream: str) -> None:
    assert same_server("http://h/fhir/Patient/1", "http://h/fhir")


def cds_client(allowed: str) -> FlaskClient:
    settings = Settings(knowledge_dir=KNOWLEDGE, cds_fhir_servers=(allowed,))
    return create_app(settings, now=lambda: FIXED_NOW).test_client()


def test_a_fhir_server_climbing_out_of_the_allowed_base_gets_no_token(upstream: str) -> None:
    Hostile.asked.clear()
    request = hook_request(
        server_style(SAMPLE_FILES[0]),
        fhirServer=f"{upstream}/../admin",
        fhirAuthorization={
            "access_token": "t",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "s",
            "subject": "x",
        },
    )
    request["prefetch"] = {}
    response = cds_client(upstream).post(SERVICE, json=request)
    assert response.status_code == 412
    assert Hostile.asked == []


@pytest.mark.parametrize("patient", [".", ".."])
def test_a_dot_patient_id_is_400(upstream: str, patient: str) -> None:
    request = hook_request(server_style(SAMPLE_FILES[0]))
    request["context"]["patientId"] = patient
    response = cds_client(upstream).post(SERVICE, json=request)
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["context.patientId"]


def test_httpx_does_not_log_the_urls_it_fetches_at_info() -> None:
    """Its INFO line is the URL, and a FHIR URL names the patient."""
    loggers = logging_config("INFO", "json")["loggers"]
    assert all(logging.getLevelName(loggers[name]["level"]) > logging.INFO for name in ("httpx", "httpcore"))
