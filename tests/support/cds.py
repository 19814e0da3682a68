"""CDS Hooks requests built from the samples, as an EHR's FHIR server would return the data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SERVICE = "/cds-services/spinefoot-back-foot"
HOOK_INSTANCE = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"
KEYS = {
    "Condition": "conditions",
    "Observation": "observations",
    "Procedure": "procedures",
    "MedicationStatement": "medicationStatements",
    "MedicationRequest": "medicationRequests",
}
INDICATOR = {
    "emergency-assessment": "critical",
    "urgent-specialist-referral": "warning",
    "surgical-consultation": "warning",
    "conservative-care": "info",
    "evaluate-local-cause": "info",
}


def server_style(sample: Path, base: str = "http://fhir.example.org/fhir") -> list[dict[str, Any]]:
    """A sample's entries as a FHIR server returns them: relative references, absolute fullUrls."""
    document = json.loads(sample.read_text())
    if document["resourceType"] == "Parameters":
        document = next(p["resource"] for p in document["parameter"] if p["name"] == "bundle")
    entries = document["entry"]
    text = json.dumps(entries)
    for entry in entries:
        resource = entry["resource"]
        if entry.get("fullUrl"):
            text = text.replace(
                json.dumps(entry["fullUrl"]), json.dumps(f"{resource['resourceType']}/{resource['id']}")
            )
    return [
        {
            "fullUrl": f"{base}/{e['resource']['resourceType']}/{e['resource']['id']}",
            "resource": e["resource"],
        }
        for e in json.loads(text)
    ]


def prefetch_for(entries: list[dict[str, Any]]) -> dict[str, Any]:
    prefetch: dict[str, Any] = {
        key: {"resourceType": "Bundle", "type": "searchset", "entry": []} for key in KEYS.values()
    }
    prefetch["patient"] = None  # unless there is one
    for entry in entries:
        rtype = entry["resource"]["resourceType"]
        if rtype == "Patient":
            prefetch["patient"] = entry["resource"]
        elif rtype in KEYS:
            prefetch[KEYS[rtype]]["entry"].append(entry)
    return prefetch


def patient_id(entries: list[dict[str, Any]]) -> str:
    """The Patient's id, or the one the resources' subject names when there is no Patient."""
    for entry in entries:
        if entry["resource"]["resourceType"] == "Patient":
            return str(entry["resource"]["id"])
    return next(
        str(e["resource"]["subject"]["reference"]).split("/")[-1]
        for e in entries
        if "subject" in e["resource"]
    )


def hook_request(entries: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": HOOK_INSTANCE,
        "context": {"patientId": patient_id(entries), "userId": "Practitioner/example"},
        "prefetch": prefetch_for(entries),
        **extra,
    }
