"""Small FHIR records for fact tests, and the facts the knowledge base reads from them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.assess.fact import FactSet
from service.assess.facts import build_facts
from service.assess.intake import read_bundle
from service.knowledge import Knowledge

SCT, ICD = "http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm"
EXAM = "http://spinefoot.org/fhir/CodeSystem/exam-finding"
AS_OF = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PATIENT = {
    "fullUrl": "urn:uuid:p",
    "resource": {"resourceType": "Patient", "id": "p", "birthDate": "1970-03-02"},
}


def coded(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def observation(code: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": code,
        "subject": {"reference": "urn:uuid:p"},
        **extra,
    }


def condition(code: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Condition", "code": code, "subject": {"reference": "urn:uuid:p"}, **extra}


def facts_of(kb: Knowledge, *resources: dict[str, Any]) -> FactSet:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [PATIENT] + [{"fullUrl": f"urn:uuid:r{i}", "resource": r} for i, r in enumerate(resources)],
    }
    return build_facts(read_bundle(bundle), kb, AS_OF)


def findings(result: FactSet) -> list[dict[str, Any]]:
    return [dict(f.attrs) for f in result.facts if f.kind == "finding"]


def present(result: FactSet) -> list[dict[str, Any]]:
    """The findings other than documented negatives."""
    return [f for f in findings(result) if f["status"] != "absent"]
