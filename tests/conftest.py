"""Shared fixtures: paths once, the app and client, the knowledge base, sample loading."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from service.knowledge import Knowledge, load_knowledge
from service.pipeline import Pipeline
from service.samples import pinned
from service.settings import Settings
from tests.support.valid_output import validated_assess_bundle

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
SAMPLES = ROOT / "fhir_samples"
SHARED = ROOT.parent / "shared"
REALWORLD = SHARED / "realworld"
FIXED_NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ASSESS = "/fhir/RiskAssessment/$assess"

SAMPLE_FILES = sorted(p for p in SAMPLES.glob("*.json") if not p.name.endswith(".expected.json"))


def expected_for(sample: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(sample.with_suffix(".expected.json").read_text())
    return data


@pytest.fixture(scope="session", autouse=True)
def every_risk_assessment_is_valid_r4() -> Iterator[None]:
    """Our own output is validated here, in every test that assesses, not on every request."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Pipeline, "assess_bundle", validated_assess_bundle)
        yield


@pytest.fixture(scope="session")
def kb() -> Knowledge:
    return load_knowledge(KNOWLEDGE)


@pytest.fixture(scope="session")
def app() -> Flask:
    return create_app(Settings(knowledge_dir=KNOWLEDGE), now=lambda: FIXED_NOW)


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture()
def knowledge_copy(tmp_path: Path) -> Path:
    """A writable copy of the knowledge base, for tests that break or extend it."""
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, target, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return target


def post_bundle(client: FlaskClient, body: Any, as_of: str | None = "2026-03-01T09:00:00Z",
                content_type: str = "application/fhir+json") -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    url = ASSESS + (f"?asOf={as_of}" if as_of else "")
    return client.post(url, data=data, content_type=content_type)


summary = pinned  # what the expected files pin down: pathway and (outcome, root, risk)
