"""Real data nobody here wrote: 200 or a clear 4xx, never 500, and clinically sensible."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.support.assess import post_bundle, summary
from tests.support.paths import REALWORLD

SYNTHEA_POSITIVE = sorted((REALWORLD / "synthea" / "positive").glob("*.json"))
SYNTHEA_NEGATIVE = sorted((REALWORLD / "synthea" / "negative").glob("*.json"))
HL7_BUNDLES = sorted((REALWORLD / "hl7-r4-examples" / "Bundle").glob("*.json"))
DPN_CODE = "368581000119106"


@pytest.mark.parametrize("path", SYNTHEA_POSITIVE + SYNTHEA_NEGATIVE + HL7_BUNDLES, ids=lambda p: p.stem[:40])
def test_real_bundle_gets_200_or_a_clear_4xx(client: FlaskClient, path: Path) -> None:
    response = post_bundle(client, path.read_bytes())
    assert response.status_code in (200, 400, 422), response.get_data(as_text=True)[:500]
    body = response.get_json()
    expected_type = "RiskAssessment" if response.status_code == 200 else "OperationOutcome"
    assert body["resourceType"] == expected_type


@pytest.mark.parametrize("path", SYNTHEA_POSITIVE, ids=lambda p: p.stem[:30])
def test_synthea_diabetic_neuropathy_is_a_local_cause(client: FlaskClient, path: Path) -> None:
    has_dpn = DPN_CODE in path.read_text()
    resource = post_bundle(client, path.read_bytes()).get_json()
    result = summary(resource)
    outcomes = [p["outcome"] for p in result["predictions"]]
    if has_dpn:
        assert result["pathway"] == "evaluate-local-cause" and "424736006" in outcomes
    else:
        assert "424736006" not in outcomes


@pytest.mark.parametrize("path", SYNTHEA_NEGATIVE, ids=lambda p: p.stem[:30])
def test_synthea_negatives_are_insufficient_information(client: FlaskClient, path: Path) -> None:
    result = summary(post_bundle(client, path.read_bytes()).get_json())
    assert result == {"pathway": "insufficient-information", "predictions": []}


def test_the_corpus_is_present() -> None:
    assert len(SYNTHEA_POSITIVE) == 8 and len(SYNTHEA_NEGATIVE) == 4 and len(HL7_BUNDLES) > 20
