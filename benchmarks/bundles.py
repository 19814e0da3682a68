"""The bundles measured: a ~10-entry clinical sample, ~50 and 5,000 entries built from it, the
largest Synthea patient, a real chart's size and type mix (3,386 entries, 2,600 of them vital
signs, labs and prescriptions), and the sample with 500 and 5,000 resources that are not read.

The larger ones are the S1 sample plus filler cloned from the largest Synthea patient's own
resources (vital signs, labs, encounters, conditions: real data nobody here wrote), re-pointed to
the sample's patient with fresh ids; every 97th filler entry repeats one of the sample's findings,
as a record with repeated examinations would.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fhir_samples" / "05-s1-radiculopathy-surgical.json"
SYNTHEA = ROOT / "tests" / "data" / "realworld" / "synthea"
AS_OF = "2026-03-01T09:00:00Z"
CHART_ENTRIES = 3386  # the real chart of issue 13 (3.1 MB), rebuilt from the Synthea patients here
CHART_FREQUENT = 2600  # of them Observations and MedicationRequests (vital signs, labs, prescriptions)
FREQUENT_TYPES = ("Observation", "MedicationRequest")
BODY_WEIGHT = "29463-7"


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    entries: int


def largest_synthea() -> Path:
    return max(SYNTHEA.glob("*/*.json"), key=lambda p: p.stat().st_size)


def grown(size: int) -> bytes:
    """The S1 sample grown to `size` entries with Synthea filler."""
    bundle: dict[str, Any] = json.loads(SAMPLE.read_text())
    patient = bundle["entry"][0]["resource"]
    patient_ref = f"Patient/{patient['id']}"
    findings = [e for e in bundle["entry"][1:]]
    filler = [
        e
        for e in json.loads(largest_synthea().read_text())["entry"]
        if e["resource"]["resourceType"] != "Patient"
    ]
    for i in range(size - len(bundle["entry"])):
        template = findings[i % len(findings)] if i % 97 == 96 else filler[i % len(filler)]
        entry = copy.deepcopy(template)
        entry["fullUrl"] = f"urn:uuid:bbbbbbbb-0000-4000-8000-{i:012d}"
        entry["resource"]["id"] = f"fill{i}"
        for key in ("subject", "patient"):
            if key in entry["resource"]:
                entry["resource"][key] = {"reference": patient_ref}
        bundle["entry"].append(entry)
    return json.dumps(bundle).encode()


def chart(size: int, frequent: int) -> bytes:
    """A real chart's size and type mix: the largest Synthea patient, then the other Synthea
    patients' resources (all real, nobody here wrote them) re-pointed to that patient with fresh
    ids, taken in turn until the bundle has `size` entries, `frequent` of them Observations and
    MedicationRequests."""
    bundle: dict[str, Any] = json.loads(largest_synthea().read_text())
    patient = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    others = [
        e
        for path in sorted(SYNTHEA.glob("*/*.json"))
        if path != largest_synthea()
        for e in json.loads(path.read_text())["entry"]
        if e["resource"]["resourceType"] != "Patient"
    ]
    common = [e for e in others if e["resource"]["resourceType"] in FREQUENT_TYPES]
    rest = [e for e in others if e["resource"]["resourceType"] not in FREQUENT_TYPES]
    more = frequent - sum(e["resource"]["resourceType"] in FREQUENT_TYPES for e in bundle["entry"])
    templates = [common[i % len(common)] for i in range(more)]
    templates += [rest[i % len(rest)] for i in range(size - len(bundle["entry"]) - more)]
    for i, template in enumerate(templates):
        entry = copy.deepcopy(template)
        entry["fullUrl"] = f"urn:uuid:cccccccc-0000-4000-8000-{i:012d}"
        entry["resource"]["id"] = f"chart{i}"
        for key in ("subject", "patient"):
            if key in entry["resource"]:
                entry["resource"][key] = {"reference": patient["fullUrl"]}
        bundle["entry"].append(entry)
    return json.dumps(bundle).encode()


def unread(size: int) -> bytes:
    """The S1 sample and `size` Synthea vital signs (body weight: a code no rule reads)."""
    bundle: dict[str, Any] = json.loads(SAMPLE.read_text())
    patient_ref = f"Patient/{bundle['entry'][0]['resource']['id']}"
    vital = next(
        e
        for e in json.loads(largest_synthea().read_text())["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and e["resource"]["code"]["coding"][0]["code"] == BODY_WEIGHT
    )
    for i in range(size):
        entry = copy.deepcopy(vital)
        entry["fullUrl"] = f"urn:uuid:dddddddd-0000-4000-8000-{i:012d}"
        entry["resource"]["id"] = f"unread{i}"
        entry["resource"]["subject"] = {"reference": patient_ref}
        bundle["entry"].append(entry)
    return json.dumps(bundle).encode()


def cases() -> list[Case]:
    synthea = largest_synthea()
    found = [
        Case("sample, 10 entries", SAMPLE.read_bytes(), 10),
        Case("grown, 50 entries", grown(50), 50),
        Case(
            f"Synthea {synthea.stem.split('_')[0]} ({synthea.stat().st_size // 1024} KiB)",
            synthea.read_bytes(),
            len(json.loads(synthea.read_text())["entry"]),
        ),
        Case(f"chart, {CHART_ENTRIES:,} entries", chart(CHART_ENTRIES, CHART_FREQUENT), CHART_ENTRIES),
        Case("grown, 5,000 entries", grown(5000), 5000),
    ]
    return found
