"""Build the RiskAssessment (contract §3) from an inference: plain words, cited, deterministic."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.dates import format_instant
from service.facts import FactSet
from service.intake import PatientRecord
from service.knowledge import Knowledge
from service.reasoning import Conclusion, Inference, Provenance

BASE = "http://spinefoot.org/fhir"
RISK_SYSTEM = "http://terminology.hl7.org/CodeSystem/risk-probability"
_RISK_DISPLAY = {"negligible": "Negligible likelihood", "low": "Low likelihood",
                 "moderate": "Moderate likelihood", "high": "High likelihood",
                 "certain": "Certain"}


def build_risk_assessment(kb: Knowledge, record: PatientRecord, facts: FactSet,
                          inference: Inference, as_of: datetime) -> dict[str, Any]:
    pathway = inference.pathway
    return {
        "resourceType": "RiskAssessment",
        "extension": [{
            "url": f"{BASE}/StructureDefinition/care-pathway",
            "valueCodeableConcept": {
                "coding": [{"system": f"{BASE}/CodeSystem/care-pathway", "code": pathway.code,
                            "display": pathway.display}],
                "text": pathway.display,
            },
        }],
        "status": "final",
        "method": {"coding": [{"system": f"{BASE}/CodeSystem/knowledge-base", "code": kb.id,
                               "version": kb.version, "display": kb.title}]},
        "subject": {"reference": record.subject},
        "occurrenceDateTime": format_instant(as_of),
        **_basis(inference),
        **({"prediction": [_prediction(c) for c in inference.conclusions]}
           if inference.conclusions else {}),
        "mitigation": pathway.mitigation,
        "note": [{"text": text} for text in _notes(kb, record, facts, inference)],
    }


def _basis(inference: Inference) -> dict[str, Any]:
    """Every input resource behind a conclusion or the chosen pathway, in first-seen order."""
    refs: dict[str, None] = {}
    whys = [c.why for c in inference.conclusions] + (
        [inference.pathway_why] if inference.pathway_why else [])
    for why in whys:
        for finding in why.findings:
            if finding.source:
                refs.setdefault(finding.source)
    return {"basis": [{"reference": ref} for ref in refs]} if refs else {}


def _prediction(conclusion: Conclusion) -> dict[str, Any]:
    definition = conclusion.definition
    codings = [{"system": definition.outcome.system, "code": definition.outcome.code,
                "display": definition.outcome.display}]
    title = definition.text
    if conclusion.root:
        codings.append({"system": f"{BASE}/CodeSystem/nerve-root", "code": conclusion.root,
                        "display": f"{conclusion.root} nerve root"})
        title += f", {conclusion.root}"
    if conclusion.root or conclusion.sides != ("unspecified",):
        title += f", {_side_text(conclusion.sides)}"
    return {
        "outcome": {"coding": codings, "text": title},
        "qualitativeRisk": {"coding": [{"system": RISK_SYSTEM, "code": conclusion.risk,
                                        "display": _RISK_DISPLAY[conclusion.risk]}]},
        "rationale": _rationale(conclusion.why),
    }


def _side_text(sides: tuple[str, ...]) -> str:
    if sides == ("unspecified",):
        return "side not documented"
    if "bilateral" in sides or {"left", "right"} <= set(sides):
        return "both sides"
    return f"{sides[0]} side"


def _rationale(why: Provenance) -> str:
    findings = "; ".join(f.label for f in why.findings) or "none"
    return f"Findings: {findings}. Rules: {', '.join(why.rules)}."


def _notes(kb: Knowledge, record: PatientRecord, facts: FactSet,
           inference: Inference) -> list[str]:
    pathway = inference.pathway
    notes = []
    if inference.pathway_why is not None:
        notes.append(f"Why {pathway.display.lower()}: {_rationale(inference.pathway_why)}")
    notes.append(f"Safety-netting: {pathway.safety_net}")
    conclusions = {c.definition.name for c in inference.conclusions}
    for item in kb.guidance:
        kind, name = item.target
        if (kind == "pathway" and name == pathway.code) or (kind == "conclusion"
                                                            and name in conclusions):
            notes.append(f"Guidance — {item.title}: {item.text} ({_cite(kb, item.sources)})")
    for gap in kb.gaps:
        if any(w in inference.present for w in gap.when) and not any(
                m in facts.documented for m in gap.missing):
            notes.append(f"Data gap: {gap.text} ({_cite(kb, gap.sources)})")
    notes.extend(f"Data gap: {text}" for text in facts.unreadable)
    notes.extend(f"Input: {note}" for note in record.notes + facts.notes)
    notes.append(f"Knowledge base {kb.id} {kb.version} ({kb.status}); decision support only, "
                 "not a diagnosis.")
    return notes


def _cite(kb: Knowledge, source_ids: tuple[str, ...]) -> str:
    cited = []
    for sid in source_ids:
        source = kb.sources[sid]
        cited.append(f"{source.title}{', ' + source.url if source.url else ''}")
    return "Source: " + "; ".join(cited)
