"""Fixtures only: the knowledge base, the app and its client, a writable knowledge copy.

Helpers live in `tests/support/` (paths, posting a bundle, servers, generators, the oracle).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.knowledge import Knowledge, load_knowledge
from service.settings import Settings
from service.web.app import create_app
from tests.support.paths import FIXED_NOW, KNOWLEDGE


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
