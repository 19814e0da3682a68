"""Every RiskAssessment the tests make is validated as R4: the service does not validate its own
output per request (issue 13: it cost 0.3 ms each), so the tests stand for that check."""

from __future__ import annotations

from typing import Any

from service.assess import fhir
from service.assess.pipeline import Assessment, Pipeline

_ASSESS = Pipeline.assess_bundle


def assert_valid_r4(resource: dict[str, Any]) -> None:
    problems = fhir.validate_resource(resource)
    assert not problems, [issue.diagnostics for issue in problems]


def validated_assess_bundle(self: Pipeline, *args: Any, **kwargs: Any) -> Assessment:
    """Pipeline.assess_bundle, then its resource validated (installed by tests/conftest.py)."""
    assessment = _ASSESS(self, *args, **kwargs)
    assert_valid_r4(assessment.resource)
    return assessment
