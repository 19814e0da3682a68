"""Build the RiskAssessment (contract §3) from an inference: plain words, cited, deterministic.

An `Explanation` is made first (each conclusion with its reasons in plain words, the notes with
their kind and audience), and the resource, its narrative and the CDS card are all written from
it, so each reason is said once and the same way everywhere. References point at `Type/id`
where the input resource has an id, so they still mean something once the RiskAssessment is
stored outside the bundle it came in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.assess.dates import format_instant
from service.assess.explain import Explanation, Finding, Note
from service.assess.intake import PatientRecord
from service.assess.narrative import render_narrative
from service.knowledge import Knowledge

BASE = "http://spinefoot.org/fhir"
RISK_SYSTEM = "http://terminology.hl7.org/CodeSystem/risk-probability"
NOTE_KIND = f"{BASE}/StructureDefinition/note-kind"
NOTE_AUDIENCE = f"{BASE}/StructureDefinition/note-audience"
REASON = f"{BASE}/StructureDefinition/rationale-finding"
RULE = f"{BASE}/StructureDefinition/rationale-rule"


def build_risk_assessment(
    kb: Knowledge, record: PatientRecord, explanation: Explanation, as_of: datetime
) -> dict[str, Any]:
    pathway = explanation.pathway
    return {
        "resourceType": "RiskAssessment",
        "text": {"status": "generated", "div": render_narrative(explanation)},
        "extension": [
            {
                "url": f"{BASE}/StructureDefinition/care-pathway",
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": f"{BASE}/CodeSystem/care-pathway",
                            "code": pathway.code,
                            "display": pathway.display,
                        }
                    ],
                    "text": pathway.display,
                },
            }
        ],
        "status": "final",
        "method": {
            "coding": [
                {
                    "system": f"{BASE}/CodeSystem/knowledge-base",
                    "code": kb.id,
                    "version": kb.version,
                    "display": kb.title,
                }
            ]
        },
        "subject": _subject(record),
        "occurrenceDateTime": format_instant(as_of),
        **_basis(explanation),
        **({"prediction": [_prediction(f) for f in explanation.findings]} if explanation.findings else {}),
        "mitigation": pathway.mitigation,
        "note": [_annotation(note) for note in explanation.notes],
    }


# ---------------------------------------------------------------- references


def _subject(record: PatientRecord) -> dict[str, Any]:
    patient = record.patient
    if patient is None or not patient.get("id"):
        return {"reference": record.subject}
    subject: dict[str, Any] = {"reference": f"Patient/{patient['id']}"}
    identifiers = patient.get("identifier") or []
    if identifiers:
        subject["identifier"] = identifiers[0]
    return subject


def _basis(explanation: Explanation) -> dict[str, Any]:
    """Every input resource behind a conclusion or the chosen pathway, in first-seen order."""
    reasons = [r for f in explanation.findings for r in f.reasons] + list(explanation.pathway_reasons)
    refs = dict.fromkeys(r.reference for r in reasons if r.reference)
    return {"basis": [{"reference": ref} for ref in refs]} if refs else {}


# ---------------------------------------------------------------- predictions


def _prediction(finding: Finding) -> dict[str, Any]:
    conclusion = finding.conclusion
    definition = conclusion.definition
    codings = [
        {
            "system": definition.outcome.system,
            "code": definition.outcome.code,
            "display": definition.outcome.display,
        }
    ]
    if conclusion.root:
        codings.append(
            {
                "system": f"{BASE}/CodeSystem/nerve-root",
                "code": conclusion.root,
                "display": f"{conclusion.root} nerve root",
            }
        )
    machine = [
        {"url": REASON, "valueReference": {"reference": r.reference, "display": r.text}}
        for r in finding.reasons
        if r.reference
    ]
    machine += [
        {"url": RULE, "valueCoding": {"system": f"{BASE}/CodeSystem/knowledge-rule", "code": rule}}
        for rule in finding.rules
    ]
    return {
        **({"extension": machine} if machine else {}),
        "outcome": {"coding": codings, "text": finding.title},
        "qualitativeRisk": {
            "coding": [{"system": RISK_SYSTEM, "code": conclusion.risk, "display": finding.risk}]
        },
        "rationale": rationale(finding),
    }


def rationale(finding: Finding) -> str:
    """The reasons first, in plain words; the rule ids after them, for whoever audits the rules."""
    reasons = "; ".join(r.sentence() for r in finding.reasons) or "none recorded"
    return f"Because of: {reasons}. Knowledge rules: {', '.join(finding.rules)}."


# ---------------------------------------------------------------- notes


def _annotation(note: Note) -> dict[str, Any]:
    return {
        "extension": [
            {"url": NOTE_KIND, "valueCoding": {"system": f"{BASE}/CodeSystem/note-kind", "code": note.kind}},
            {
                "url": NOTE_AUDIENCE,
                "valueCoding": {"system": f"{BASE}/CodeSystem/note-audience", "code": note.audience},
            },
        ],
        "text": note.text,
    }


def note_kind(annotation: dict[str, Any]) -> str | None:
    """The kind code of a RiskAssessment note written by `_annotation` (for cards and pages)."""
    for extension in annotation.get("extension") or []:
        if extension.get("url") == NOTE_KIND:
            return str(extension["valueCoding"]["code"])
    return None
