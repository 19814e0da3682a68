"""Posting a bundle to `$assess` and reading what a sample is expected to give."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from service.samples import pinned
from tests.support.paths import ASSESS


def expected_for(sample: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(sample.with_suffix(".expected.json").read_text())
    return data


def post_bundle(
    client: FlaskClient,
    body: Any,
    as_of: str | None = "2026-03-01T09:00:00Z",
    content_type: str = "application/fhir+json",
) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    url = ASSESS + (f"?asOf={as_of}" if as_of else "")
    return client.post(url, data=data, content_type=content_type)


summary = pinned  # what the expected files pin down: pathway and (outcome, root, risk)
