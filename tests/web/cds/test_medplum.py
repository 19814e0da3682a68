"""The CDS Hooks fetch path against a real FHIR server: Medplum's FHIR router with its in-memory
repository (tests/support/medplum, npm), seeded with the 12 Synthea patients of
tests/data/realworld through transactions.

Each patient fetched from it (POST {type}/_search, paged by its `next` links, no token: an open
server) must be assessed exactly as the same patient posted to `$assess`. Skipped only where node
or `npm ci` in tests/support/medplum is missing and this is not CI; under CI=true that fails.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.samples import pinned
from service.settings import Settings
from service.web.app import create_app
from tests.support.assess import post_bundle
from tests.support.paths import FIXED_NOW, KNOWLEDGE, REALWORLD

MEDPLUM = Path(__file__).parents[2] / "support" / "medplum"
SYNTHEA = sorted((REALWORLD / "synthea").glob("*/*.json"))  # positive/ and negative/
BY_NAME = {path.stem: path for path in SYNTHEA}
SERVICE = "/cds-services/spinefoot-back-foot"
START_SECONDS = 90  # it indexes the R4 definitions first: about 10 s on 2 cores
PAGE_SIZE = 20  # Medplum's own default: the larger patients' Observations take many pages
TYPES = ("Condition", "Observation", "Procedure", "MedicationStatement", "MedicationRequest")


@dataclass(frozen=True)
class Medplum:
    base: str
    patients: dict[str, str]  # Synthea file stem -> the id Medplum gave the Patient

    def requests(self) -> list[dict[str, Any]]:
        asked: list[dict[str, Any]] = httpx.get(
            self.base.removesuffix("/fhir") + "/requests", timeout=10
        ).json()
        return asked


def _node() -> tuple[str, int]:
    """node and its major version; Medplum 5 needs 20 or later (20 with a flag)."""
    node = shutil.which("node")
    major = (
        int(
            subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
            .stdout.strip()
            .lstrip("v")
            .split(".")[0]
        )
        if node
        else 0
    )
    if major < 20 or not (MEDPLUM / "node_modules" / "@medplum" / "fhir-router").is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(
                "node 20+ or tests/support/medplum/node_modules is missing under CI (.ci/run installs them)"
            )
        pytest.skip("needs node 20+ and `npm ci` in tests/support/medplum")
    assert node is not None
    return node, major


def _first_line(process: subprocess.Popen[str], seconds: float) -> str:
    """The port the server prints once it listens, or fail after `seconds`."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=seconds):
            pytest.fail(f"the Medplum server did not start within {seconds} s")
    return process.stdout.readline().strip()


def _seed(base: str) -> dict[str, str]:
    """Each Synthea transaction Bundle, as is; the Patient's new id from the response."""
    patients = {}
    with httpx.Client(timeout=60) as http:
        for path in SYNTHEA:
            response = http.post(
                base, content=path.read_bytes(), headers={"Content-Type": "application/fhir+json"}
            )
            assert response.status_code == 200, response.text[:500]
            assert response.json()["type"] == "transaction-response"
            [location] = [
                e["response"]["location"]
                for e in response.json()["entry"]
                if e["response"]["location"].startswith("Patient/")
            ]
            patients[path.stem] = location.split("/")[1]
    return patients


@pytest.fixture(scope="module")
def medplum() -> Iterator[Medplum]:
    node, major = _node()
    flags = ["--experimental-websocket"] if major < 22 else []  # Node 20: WebSocket is behind it
    process = subprocess.Popen(
        [node, *flags, "server.mjs", str(PAGE_SIZE)],
        cwd=MEDPLUM,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{_first_line(process, START_SECONDS)}/fhir"
        yield Medplum(base, _seed(base))
    finally:
        assert process.stdin is not None
        process.stdin.close()  # it exits when its stdin closes; SIGTERM if it does not
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


def most_observations() -> str:
    """The Synthea patient with the most Observations (Danae Kshlerin: 257)."""

    def count(path: Path) -> int:
        return sum(
            e["resource"]["resourceType"] == "Observation" for e in json.loads(path.read_text())["entry"]
        )

    return max(BY_NAME, key=lambda name: count(BY_NAME[name]))


def call(base: str, patient: str, extra: dict[str, Any] | None = None, **settings: Any) -> Any:
    """A patient-view call with no prefetch at all: everything comes from the server."""
    app = create_app(Settings(knowledge_dir=KNOWLEDGE, **settings), now=lambda: FIXED_NOW)
    request = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "fhirServer": base,
        "context": {"patientId": patient, "userId": "Practitioner/example"},
        **(extra or {}),
    }
    return app.test_client().post(SERVICE, json=request)


def test_the_synthea_patients_are_seeded_through_transactions(medplum: Medplum) -> None:
    assert len(medplum.patients) == len(SYNTHEA) == 12
    found = httpx.get(f"{medplum.base}/Patient?_count=50", timeout=10).json()
    assert found["total"] == 12
    assert {e["resource"]["id"] for e in found["entry"]} == set(medplum.patients.values())


@pytest.mark.parametrize("name", list(BY_NAME))
def test_a_patient_fetched_from_medplum_is_assessed_as_when_posted(medplum: Medplum, name: str) -> None:
    patient = medplum.patients[name]
    started = len(medplum.requests())
    response = call(medplum.base, patient, cds_open_fhir_servers=(medplum.base,))
    assert response.status_code == 200, response.get_data(as_text=True)
    cards = response.get_json()["cards"]
    app = create_app(Settings(knowledge_dir=KNOWLEDGE))
    posted = post_bundle(
        app.test_client(), json.loads(BY_NAME[name].read_text()), as_of="2026-03-01T09:00:00Z"
    )
    expected = pinned(posted.get_json())
    if not cards:
        assert expected["pathway"] == "insufficient-information"
    else:
        fetched = cards[0]["suggestions"][0]["actions"][0]["resource"]
        assert pinned(fetched) == expected
        assert fetched["subject"]["reference"] == f"Patient/{patient}"
    asked = medplum.requests()[started:]
    assert {(r["method"], r["path"]) for r in asked} >= {
        ("GET", f"/fhir/Patient/{patient}"),
        *{("POST", f"/fhir/{t}/_search") for t in TYPES},
    }
    assert not any(r["authorization"] for r in asked)  # an open server: no token was sent


def test_paging_follows_the_servers_next_links(medplum: Medplum) -> None:
    name = most_observations()
    started = len(medplum.requests())
    assert (
        call(medplum.base, medplum.patients[name], cds_open_fhir_servers=(medplum.base,)).status_code == 200
    )
    pages = [
        r for r in medplum.requests()[started:] if (r["method"], r["path"]) == ("GET", "/fhir/Observation")
    ]
    assert len(pages) >= 10  # 257 Observations, 20 a page: the first POSTed, 13 pages in all


def test_too_many_pages_from_medplum_is_412(medplum: Medplum) -> None:
    name = most_observations()
    response = call(
        medplum.base, medplum.patients[name], cds_open_fhir_servers=(medplum.base,), cds_fetch_max_pages=3
    )
    assert response.status_code == 412
    assert "more than 3 pages" in response.get_json()["issue"][0]["diagnostics"]


def test_with_a_token_medplum_must_be_allowed_for_tokens(medplum: Medplum) -> None:
    patient = next(iter(medplum.patients.values()))
    token = {
        "fhirAuthorization": {
            "access_token": "t0ken",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "spinefoot",
        }
    }
    refused = call(medplum.base, patient, cds_open_fhir_servers=(medplum.base,), extra=token)
    assert refused.status_code == 412  # open servers get no token
    started = len(medplum.requests())
    allowed = call(medplum.base, patient, cds_fhir_servers=(medplum.base,), extra=token)
    assert allowed.status_code == 200, allowed.get_data(as_text=True)
    assert all(r["authorization"] for r in medplum.requests()[started:])


def test_an_unknown_patient_on_medplum_gives_no_card(medplum: Medplum) -> None:
    response = call(medplum.base, "no-such-patient", cds_open_fhir_servers=(medplum.base,))
    assert response.status_code == 200 and response.get_json() == {"cards": []}
