"""The shipped sample bundles and what each is expected to give (`NAME.expected.json` beside it).

The expected files pin the pathway and each prediction's outcome, root and risk; `pinned` takes
the same from a RiskAssessment, so a result can be compared with its expectation.
"""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path
from typing import Any

EXPECTED_SUFFIX = ".expected.json"


def samples_dir() -> Path:
    return Path(str(importlib.resources.files("service.fhir_samples")))


def is_expectation(path: Path) -> bool:
    return path.name.endswith(EXPECTED_SUFFIX)


def sample_files() -> list[Path]:
    return sorted(p for p in samples_dir().glob("*.json") if not is_expectation(p))


def cds_hooks_files() -> list[Path]:
    """Some samples again as CDS Hooks requests (prefetch as a FHIR server returns it)."""
    return sorted((samples_dir() / "cds-hooks").glob("*.json"))


def expectation_path(sample: Path) -> Path:
    return sample.with_name(sample.name.removesuffix(".json") + EXPECTED_SUFFIX)


def expected_for(sample: Path) -> dict[str, Any] | None:
    """The sample's expectation, or None when it has none."""
    path = expectation_path(sample)
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def pinned(resource: dict[str, Any]) -> dict[str, Any]:
    """What an expectation pins: the pathway and (outcome, root, risk) of each prediction."""
    predictions = []
    for p in resource.get("prediction", []):
        codings = p["outcome"]["coding"]
        item = {"outcome": codings[0]["code"], "risk": p["qualitativeRisk"]["coding"][0]["code"]}
        if len(codings) > 1:
            item["root"] = codings[1]["code"]
        predictions.append(item)
    pathway = resource["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
    return {"pathway": pathway, "predictions": predictions}


def differences(resource: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """How a result differs from its expectation, in words (empty when it matches)."""
    got = pinned(resource)
    problems = []
    if got["pathway"] != expected["pathway"]:
        problems.append(f"pathway {got['pathway']}, expected {expected['pathway']}")
    if got["predictions"] != expected["predictions"]:
        problems.append(
            f"predictions {_codes(got['predictions'])}, expected {_codes(expected['predictions'])}"
        )
    return problems


def _codes(predictions: list[dict[str, Any]]) -> str:
    return (
        ", ".join("/".join(str(p[k]) for k in ("outcome", "root", "risk") if k in p) for p in predictions)
        or "none"
    )
