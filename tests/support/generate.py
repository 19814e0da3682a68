"""Generated patients: random mixtures of the samples' clinical resources, varied where it matters.

Each bundle is one patient (every resource re-pointed to it) with 1-14 resources drawn from all
samples, then varied: sides swapped, dates moved (recent vs persisting), grades, quantities and
text values changed (in components too), the birth date moved (age). Some graded examinations
are repeated, at another date (a serial series, falling or rising) or on the other side (left and
right recorded separately), some findings are recorded absent on the other side (a negative
straight-leg raise on the left beside right-sided symptoms), some dates moved years back (old
surgery, long-standing pain) and some put just either side of a knowledge boundary (14, 42, 84,
90 and 365 days before asOf). Seeded, so a failing case can be reproduced from its number.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta
from functools import cache
from typing import Any

from service.assess.dates import parse_instant
from tests.support.paths import SAMPLE_FILES

_SIDES = ["7771000", "24028007", "51440002"]  # SNOMED left, right, bilateral
_DATE_KEYS = (
    "onsetDateTime",
    "effectiveDateTime",
    "recordedDate",
    "performedDateTime",
    "issued",
    "authoredOn",
)
_TEXTS = ["No", "Yes", "denies", "Positive", "not sure", "none"]  # lexicon words and one unreadable
_VALUES = ("valueBoolean", "valueString", "valueCodeableConcept", "valueInteger", "valueQuantity")
_BOUNDARY_DAYS = (13, 15, 41, 43, 83, 85, 88, 90, 91, 364, 366)  # either side of each parameter


@cache
def _pool() -> tuple[str, ...]:
    """Every clinical resource of the samples, as JSON text."""
    found = []
    for path in SAMPLE_FILES:
        document = json.loads(path.read_text())
        if document["resourceType"] == "Parameters":
            document = next(p["resource"] for p in document["parameter"] if p["name"] == "bundle")
        for entry in document["entry"]:
            if entry["resource"]["resourceType"] not in ("Patient", "Encounter"):
                found.append(json.dumps(entry["resource"]))
    return tuple(found)


def generated_bundle(seed: int) -> tuple[dict[str, Any], str]:
    """(Bundle, asOf) for case number `seed`."""
    rng = random.Random(seed)
    resources = [
        _vary(json.loads(text), rng, i) for i, text in enumerate(rng.sample(_pool(), rng.randint(1, 14)))
    ]
    resources += _repeats(resources, random.Random(-seed - 1))  # own stream: seeds stay comparable
    patient = {
        "resourceType": "Patient",
        "id": "gen",
        "birthDate": f"{rng.randint(1930, 2005)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
    }
    entries = [{"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000000", "resource": patient}]
    entries += [
        {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i + 1:012d}", "resource": r}
        for i, r in enumerate(resources)
    ]
    as_of = f"2026-0{rng.randint(1, 9)}-{rng.randint(10, 28)}T09:00:00Z"
    _near_boundaries(resources, as_of, random.Random(-seed - 2))
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}, as_of


def _vary(resource: dict[str, Any], rng: random.Random, index: int) -> dict[str, Any]:
    resource["id"] = f"r{index}"
    resource["subject"] = {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}
    text = json.dumps(resource)
    if rng.random() < 0.4:  # another side
        for side in _SIDES:
            text = text.replace(f'"{side}"', f'"{rng.choice(_SIDES)}"')
    resource = json.loads(text)
    for key in _DATE_KEYS:
        if key in resource and rng.random() < 0.5:
            resource[key] = f"202{rng.randint(4, 6)}-0{rng.randint(1, 9)}-{rng.randint(10, 28)}"
    for part in [resource, *resource.get("component", [])]:
        _vary_value(part, rng)
    return resource


def _repeats(resources: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Copies of graded examinations at another date or on the other side, and old dates."""
    copies = []
    for resource in resources:
        if "valueInteger" in resource and rng.random() < 0.3:
            copy = json.loads(json.dumps(resource))
            copy["id"] = f"{resource['id']}-again"
            copy["valueInteger"] = rng.randint(0, 5)
            if rng.random() < 0.5:
                copy["effectiveDateTime"] = f"2025-{rng.randint(10, 12)}-{rng.randint(10, 28)}"
            else:
                text = json.dumps(copy)
                copy = json.loads(
                    text.replace('"7771000"', '"x"')
                    .replace('"24028007"', '"7771000"')
                    .replace('"x"', '"24028007"')
                )
            copies.append(copy)
        if resource["resourceType"] == "Observation" and "component" not in resource and rng.random() < 0.2:
            copies.append(_negated(resource))
        for key in ("onsetDateTime", "performedDateTime"):
            if key in resource and rng.random() < 0.15:
                resource[key] = f"20{rng.randint(10, 23)}-0{rng.randint(1, 9)}-{rng.randint(10, 28)}"
    return copies


def _negated(resource: dict[str, Any]) -> dict[str, Any]:
    """The Observation recorded absent (valueBoolean false) on the other side."""
    copy = {k: v for k, v in json.loads(json.dumps(resource)).items() if k not in _VALUES}
    copy["id"], copy["valueBoolean"] = f"{resource['id']}-negative", False
    text = json.dumps(copy).replace('"7771000"', '"x"').replace('"24028007"', '"7771000"')
    return dict(json.loads(text.replace('"x"', '"24028007"')))


def _near_boundaries(resources: list[dict[str, Any]], as_of: str, rng: random.Random) -> None:
    """Some onsets and procedure dates a day or two either side of a knowledge boundary."""
    instant = parse_instant(as_of)
    for resource in resources:
        for key in ("onsetDateTime", "performedDateTime", "effectiveDateTime"):
            if key in resource and rng.random() < 0.15:
                moved = instant - timedelta(days=rng.choice(_BOUNDARY_DAYS))
                resource[key] = moved.date().isoformat()


def _vary_value(part: dict[str, Any], rng: random.Random) -> None:
    """Grades anywhere in 0-5, quantities half to one and a half times the sample's (across the
    thresholds), and text values among the lexicon's words and one it cannot read."""
    if "valueInteger" in part and rng.random() < 0.5:
        part["valueInteger"] = rng.randint(0, 5)
    if "valueQuantity" in part and rng.random() < 0.5:
        part["valueQuantity"]["value"] = round(part["valueQuantity"]["value"] * rng.uniform(0.5, 1.5), 2)
    if "valueString" in part and rng.random() < 0.5:
        part["valueString"] = rng.choice(_TEXTS)
