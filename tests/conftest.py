"""Fixtures only: the knowledge base, the app and its client, a writable knowledge copy.

Helpers live in `tests/support/` (paths, posting a bundle, servers, generators, the oracle).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.assess.pipeline import Pipeline
from service.knowledge import Knowledge, load_knowledge
from service.settings import Settings
from service.web.app import create_app
from tests.support.paths import FIXED_NOW, KNOWLEDGE
from tests.support.valid_output import validated_assess_bundle


@pytest.fixture(scope="session", autouse=True)
def every_risk_assessment_is_valid_r4() -> Iterator[None]:
    """Our own output is validated here, in every test that assesses, not on every request."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Pipeline, "assess_bundle", validated_assess_bundle)
        yield


@pytest.fixture(scope="session")
def kb() -> Knowledge:
    return load_knowledge(KNOWLEDGE)


@pytest.fixture(scope="session", autouse=True)
def apps_share_one_load_of_the_shipped_knowledge(kb: Knowledge) -> Iterator[None]:
    """The many apps the tests build on the shipped knowledge base (frozen, never changed in
    place) share one load of it; any other directory, a broken copy above all, is loaded anew.
    Loading itself is tested through `load_knowledge`, which this leaves alone."""

    def load(directory: Path | None = None) -> Knowledge:
        if directory is None or Path(directory).resolve() == KNOWLEDGE.resolve():
            return kb
        return load_knowledge(directory)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("service.web.app.load_knowledge", load)
        yield


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
