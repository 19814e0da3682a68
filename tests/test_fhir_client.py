"""The FHIR client against a hostile upstream on loopback: bounded bytes, time, depth and paths."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from service.app import create_app
from service.errors import PreconditionFailed
from service.fhir_client import FetchLimits, FhirClient, same_server
from service.logs import logging_config
from service.settings import Settings
from tests.conftest import FIXED_NOW, KNOWLEDGE, SAMPLE_FILES
from tests.support.cds import SERVICE, hook_request, server_style

DEEP = b'{"resourceType": "Patient", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"


class _Hostile(BaseHTTPRequestHandler):
    """/fhir/huge: 20 MB of JSON; /fhir/slow: a byte every 50 ms; /fhir/deep: nesting 50,000;
    /fhir/next-up: a page whose next link climbs out of /fhir. Every path asked is recorded."""

    asked: list[str] = []
    echo = b"{}"  # what /fhir/echo answers

    def log_message(self, *_: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.asked.append(self.path)
        kind = self.path.split("/")[2] if self.path.count("/") >= 2 else ""
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        try:
            getattr(self, f"_{kind.replace('-', '_')}", self._ok)()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def _huge(self) -> None:
        self.end_headers()
        self.wfile.write(b'{"resourceType": "Patient", "x": "')
        for _ in range(320):
            self.wfile.write(b"a" * 65536)
        self.wfile.write(b'"}')

    def _slow(self) -> None:
        body = b'{"resourceType": "Patient"' + b" " * 300 + b"}"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for byte in body:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.05)

    def _deep(self) -> None:
        self.send_header("Content-Length", str(len(DEEP)))
        self.end_headers()
        self.wfile.write(DEEP)

    def _next_up(self) -> None:
        port = self.server.server_address[1]
        self._json(b'{"resourceType": "Bundle", "type": "searchset", "link": [{"relation": '
                   b'"next", "url": "http://127.0.0.1:%d/fhir/next-up/../../admin/x"}]}' % port)

    def _echo(self) -> None:
        self._json(self.echo)

    def _ok(self) -> None:
        self._json(b'{"resourceType": "Bundle", "type": "searchset"}')

    def _json(self, body: bytes) -> None:
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    server.shutdown()
    server.server_close()


LIMITS = FetchLimits(timeout=2.0, max_pages=5, max_bytes=1 << 20, deadline=1.5)


def fetch(base: str, query: str) -> str:
    started = time.monotonic()
    with FhirClient(base, "token", LIMITS) as client, pytest.raises(PreconditionFailed) as error:
        client.get(query)
    assert time.monotonic() - started < 5, "the call was not bounded"
    return str(error.value.issues[0].diagnostics)


def test_an_answer_over_the_byte_cap_is_412(upstream: str) -> None:
    assert "exceed the 1048576 bytes allowed" in fetch(f"{upstream}/huge", "Patient/1")


def test_a_trickling_answer_runs_into_the_calls_deadline(upstream: str) -> None:
    assert "longer than the 1.5 s allowed" in fetch(f"{upstream}/slow", "Patient/1")


def test_json_nested_past_the_limit_is_412_not_a_crash(upstream: str) -> None:
    assert "is not a FHIR resource" in fetch(f"{upstream}/deep", "Patient/1")


@settings(max_examples=40, deadline=None)
@given(depth=st.integers(1, 3000), opener=st.sampled_from(["[", '{"a": ']),
       inside=st.sampled_from(['"resourceType": "Patient", ', ""]))
def test_upstream_json_of_any_depth_is_a_resource_or_412(upstream: str, depth: int, opener: str,
                                                         inside: str) -> None:
    closer = "]" if opener == "[" else "}"
    _Hostile.echo = ("{" + inside + '"x": ' + opener * depth + "1" + closer * depth + "}").encode()
    with FhirClient(f"{upstream}/echo", "token", LIMITS) as client:
        try:
            entries = client.get("Patient/1")
        except PreconditionFailed:  # the only failure allowed: never a RecursionError, a 500
            assert depth >= 63 or not inside
        else:
            assert depth < 64
            assert entries[0]["resource"].get("resourceType") == ("Patient" if inside else None)


def test_a_next_link_climbing_out_of_the_base_is_never_followed(upstream: str) -> None:
    _Hostile.asked.clear()
    assert "on another server" in fetch(f"{upstream}/next-up", "Condition?patient=1")
    assert not any("admin" in path for path in _Hostile.asked)


@pytest.mark.parametrize("url", [
    "http://h/fhir/../admin", "http://h/fhir/%2e%2e/admin", "http://h/fhir/./x/../../admin",
    "http://h/fhir/%2E%2E%2Fadmin", "http://h/fhir/..\\admin", "http://h/fhirx/Patient"])
def test_paths_outside_the_allowed_base_are_not_the_same_server(url: str) -> None:
    assert not same_server(url, "http://h/fhir")


def test_paths_under_the_base_are(upstream: str) -> None:
    assert same_server("http://h/fhir/Patient/1", "http://h/fhir")


def cds_client(allowed: str) -> FlaskClient:
    settings = Settings(knowledge_dir=KNOWLEDGE, cds_fhir_servers=(allowed,))
    return create_app(settings, now=lambda: FIXED_NOW).test_client()


def test_a_fhir_server_climbing_out_of_the_allowed_base_gets_no_token(upstream: str) -> None:
    _Hostile.asked.clear()
    request = hook_request(server_style(SAMPLE_FILES[0]), fhirServer=f"{upstream}/../admin",
                           fhirAuthorization={"access_token": "t", "token_type": "Bearer",
                                              "expires_in": 300, "scope": "s", "subject": "x"})
    request["prefetch"] = {}
    response = cds_client(upstream).post(SERVICE, json=request)
    assert response.status_code == 412
    assert _Hostile.asked == []


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
    assert all(logging.getLevelName(loggers[name]["level"]) > logging.INFO
               for name in ("httpx", "httpcore"))
