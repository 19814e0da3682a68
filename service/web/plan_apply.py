"""`PlanDefinition/$apply` (FHIR Clinical Reasoning): the assessment as a proposed CarePlan.

The input is a Parameters resource with `subject` (`Patient/<id>`), `data` (the patient's
Bundle) and optionally `asOf`; the assessment is the same as `$assess`. The answer is an R4
CarePlan that instantiates the PlanDefinition and contains the RiskAssessment and a
RequestGroup with the pathway's action, whose sub-action records that RiskAssessment (as the
CDS card's suggestion does). Contained resources carry no narrative (R4 dom-1): the
assessment's narrative is the CarePlan's.
"""

from __future__ import annotations

import json
from typing import Any

from service.assess.pipeline import Assessment
from service.assess.report import BASE
from service.errors import InvalidRequest, Unprocessable
from service.knowledge import Knowledge

ACTION_TYPE = "http://terminology.hl7.org/CodeSystem/action-type"


def assess_parameters(document: Any) -> tuple[str, bytes]:
    """The `subject`, and the body `$assess` reads (`data` as its `bundle`, `asOf` kept)."""
    params = document.get("parameter") if isinstance(document, dict) else None
    if (
        not isinstance(document, dict)
        or document.get("resourceType") != "Parameters"
        or not isinstance(params, list)
    ):
        raise InvalidRequest.single(
            "structure", "the body must be a Parameters resource with subject and data", "Parameters"
        )
    named = {p.get("name"): p for p in params if isinstance(p, dict)}
    subject = named.get("subject", {}).get("valueString")
    if not isinstance(subject, str) or not subject.startswith("Patient/"):
        raise InvalidRequest.single(
            "required", "parameter 'subject' must be a valueString Patient/<id>", "Parameters.parameter"
        )
    if "data" not in named:
        raise InvalidRequest.single(
            "required", "parameter 'data' (the patient's Bundle) is required", "Parameters.parameter"
        )
    kept = [
        {**p, "name": "bundle"} if p.get("name") == "data" else p
        for p in params
        if isinstance(p, dict) and p.get("name") in ("data", "asOf")
    ]
    return subject, json.dumps({"resourceType": "Parameters", "parameter": kept}).encode()


def care_plan(kb: Knowledge, plan: dict[str, Any], assessment: Assessment, subject: str) -> dict[str, Any]:
    resource = assessment.resource
    if resource.get("subject", {}).get("reference") != subject:
        raise Unprocessable.single(
            "invalid", "the subject is not the patient of data", "Parameters.parameter"
        )
    pathway = assessment.explanation.pathway
    canonical = f"{plan['url']}|{plan['version']}"
    action = next(a for a in plan["action"] if a["id"] == pathway.code)
    contained = {key: value for key, value in resource.items() if key != "text"}
    request_group = {
        "resourceType": "RequestGroup",
        "id": "recommendations",
        "instantiatesCanonical": [canonical],
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": subject},
        "authoredOn": resource["occurrenceDateTime"],
        "action": [
            {
                "title": action["title"],
                "description": action["description"],
                "priority": action["priority"],
                "code": action["code"],
                "documentation": action["documentation"],
                "action": [
                    {
                        "title": "Record this risk assessment",
                        "type": {"coding": [{"system": ACTION_TYPE, "code": "create"}]},
                        "resource": {"reference": "#assessment"},
                    }
                ],
            }
        ],
    }
    return {
        "resourceType": "CarePlan",
        "text": resource["text"],
        "contained": [{**contained, "id": "assessment"}, request_group],
        "extension": [
            e
            for e in resource.get("extension", [])
            if e.get("url") == f"{BASE}/StructureDefinition/care-pathway"
        ],
        "instantiatesCanonical": [canonical],
        "status": "draft",
        "intent": "proposal",
        "title": pathway.display,
        "description": pathway.mitigation,
        "subject": {"reference": subject},
        "created": resource["occurrenceDateTime"],
        "author": {"display": f"Spinefoot ({kb.id} {kb.version})"},
        "supportingInfo": [{"reference": "#assessment"}],
        "activity": [{"reference": {"reference": "#recommendations"}}],
    }
