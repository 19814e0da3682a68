"""The CapabilityStatement and the OperationDefinition of $assess (contract §1)."""

from __future__ import annotations

from typing import Any

from service.assess.report import BASE
from service.knowledge import Knowledge

MEDIA_TYPES = ["application/fhir+json", "application/json"]


def operation_definition() -> dict[str, Any]:
    return {
        "resourceType": "OperationDefinition",
        "id": "assess",
        "url": f"{BASE}/OperationDefinition/assess",
        "name": "Assess",
        "title": "Assess back-related foot pain",
        "status": "active",
        "kind": "operation",
        "code": "assess",
        "resource": ["RiskAssessment"],
        "system": False,
        "type": True,
        "instance": False,
        "description": (
            "Assesses one patient's Bundle (any Bundle type) and returns a RiskAssessment: "
            "whether foot symptoms may come from the lumbar spine, the nerve root (L4, L5, S1), "
            "cauda equina and other red flags, local causes, and the care pathway (extension "
            f"{BASE}/StructureDefinition/care-pathway). The body is the Bundle itself or a "
            "Parameters resource. asOf may also be given as a query parameter; default now."
        ),
        "parameter": [
            {
                "name": "bundle",
                "use": "in",
                "min": 1,
                "max": "1",
                "type": "Bundle",
                "documentation": "The patient's Bundle (Patient, Condition, Observation, "
                "Procedure, MedicationStatement, MedicationRequest are read). A "
                "resource none of whose codings (code, a component's code, "
                "medicationCodeableConcept) the knowledge base uses is not read: "
                "not validated, counted in one note, still held to the one-subject "
                "rule.",
            },
            {
                "name": "asOf",
                "use": "in",
                "min": 0,
                "max": "1",
                "type": "dateTime",
                "documentation": "Evaluation instant for durations and ages; default now.",
            },
            {
                "name": "return",
                "use": "out",
                "min": 1,
                "max": "1",
                "type": "RiskAssessment",
                "documentation": "With a generated narrative; subject Patient/<id> and basis "
                "Type/<id> where the input has ids; each note coded by the "
                f"extensions {BASE}/StructureDefinition/note-kind and note-audience.",
            },
        ],
    }


def capability_statement(kb: Knowledge, software_version: str, base_url: str | None) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-24",
        "kind": "instance",
        "software": {"name": "Spinefoot", "version": software_version},
        "implementation": {
            "description": f"Spinefoot; knowledge base {kb.id} version {kb.version} ({kb.status})",
            **({"url": f"{base_url}/fhir"} if base_url else {}),
        },
        "fhirVersion": "4.0.1",
        "format": MEDIA_TYPES,
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    f"Knowledge base {kb.id} {kb.version}. Resource types other than the six read "
                    "are skipped without validation and named in a note. Request bodies over the "
                    "configured limit (default 5 MiB) get 413."
                ),
                "resource": [
                    {
                        "type": "RiskAssessment",
                        "operation": [{"name": "assess", "definition": f"{BASE}/OperationDefinition/assess"}],
                    },
                    *knowledge_resources(kb),
                ],
            }
        ],
    }


def knowledge_resources(kb: Knowledge) -> list[dict[str, Any]]:
    """The knowledge as read-only FHIR artifacts (service/web/artifacts.py), and `$apply`."""
    return [
        {
            "type": "PlanDefinition",
            "interaction": [{"code": "read"}],
            "documentation": f"{kb.id}: one action per care pathway, triggered by the CDS Hooks "
            "patient-view, order-select and order-sign; $apply gives a CarePlan.",
            "operation": [
                {
                    "name": "apply",
                    "definition": "http://hl7.org/fhir/OperationDefinition/PlanDefinition-apply",
                    "documentation": "in: subject (Patient/<id>), data (Bundle), asOf; "
                    "out: a CarePlan with the RiskAssessment and a "
                    "RequestGroup contained",
                }
            ],
        },
        {
            "type": "Library",
            "interaction": [{"code": "read"}],
            "documentation": f"{kb.id}: the knowledge YAML as attachments, and its data requirements",
        },
        {
            "type": "ValueSet",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "documentation": "Every concept and order set of the knowledge base, with its codes",
            "searchParam": [
                {
                    "name": "url",
                    "type": "uri",
                    "definition": "http://hl7.org/fhir/SearchParameter/ValueSet-url",
                }
            ],
        },
    ]
