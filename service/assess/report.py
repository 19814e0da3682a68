"""Build the RiskAssessment (contract §3) from an inference: plain words, cited, deterministic.

An `Explanation` is made first (each conclusion with its reasons in plain words, the notes with
their kind and audience), and the resource, its narrative and the CDS card are all written from
it, so each reason is said once and the same way everywhere. References point at `Type/id`
where the input resource has an id, so they still mean something once the RiskAssessment is
stored outside the bundle it came in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.assess.dates import format_instant
from service.assess.fact import FactSet, InputFact
from service.assess.intake import PatientRecord
from service.assess.narrative import render_narrative
from service.assess.reasoning import Conclusion, Inference, Provenance
from service.knowledge import Knowledge, PathwayDef

BASE = "http://spinefoot.org/fhir"
RISK_SYSTEM = "http://terminology.hl7.org/CodeSystem/risk-probability"
NOTE_KIND = f"{BASE}/StructureDefinition/note-kind"
NOTE_AUDIENCE = f"{BASE}/StructureDefinition/note-audience"
REASON = f"{BASE}/StructureDefinition/rationale-finding"
RULE = f"{BASE}/StructureDefinition/rationale-rule"
_RISK_DISPLAY = {
    "negligible": "Negligible likelihood",
    "low": "Low likelihood",
    "moderate": "Moderate likelihood",
    "high": "High likelihood",
    "certain": "Certain",
}
# where each resource type records when it happened, first found wins (dates only are shown)
_DATE_FIELDS = (
    "effectiveDateTime",
    "effectivePeriod",
    "issued",
    "onsetDateTime",
    "onsetPeriod",
    "recordedDate",
    "performedDateTime",
    "performedPeriod",
    "authoredOn",
    "dateAsserted",
)


@dataclass(frozen=True)
class Reason:
    """One finding behind a conclusion, as a person reads it, and where it came from."""

    text: str  # e.g. "Numbness (dorsum of foot, left)"
    kind: str | None  # the resource type, e.g. "Observation"
    date: str | None  # the day it was recorded, YYYY-MM-DD
    reference: str | None  # durable: Type/id when the resource has an id

    def sentence(self) -> str:
        return ", ".join(x for x in (self.text, self.date, self.kind) if x)


@dataclass(frozen=True)
class Finding:
    """A conclusion as reported: its title, likelihood, reasons, and the rules behind it."""

    conclusion: Conclusion
    title: str
    reasons: tuple[Reason, ...]
    rules: tuple[str, ...]

    @property
    def risk(self) -> str:
        return _RISK_DISPLAY[self.conclusion.risk]


@dataclass(frozen=True)
class Note:
    kind: str  # guidance | safety-net | data-gap | input-ignored
    audience: str  # clinician | patient
    text: str


@dataclass(frozen=True)
class Explanation:
    pathway: PathwayDef
    findings: tuple[Finding, ...]  # most urgent first
    pathway_reasons: tuple[Reason, ...]  # behind the pathway and not already behind a finding
    notes: tuple[Note, ...]
    knowledge: str  # "id version (status)"

    def notes_of(self, kind: str) -> tuple[Note, ...]:
        return tuple(note for note in self.notes if note.kind == kind)


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


def explain(kb: Knowledge, record: PatientRecord, facts: FactSet, inference: Inference) -> Explanation:
    durable = _durable_references(record)
    dates = {r.ref: _recorded_on(r.data) for r in record.resources}
    findings = tuple(
        Finding(c, _title(c), _reasons(c.why, durable, dates), c.why.rules) for c in inference.conclusions
    )
    said = {reason for finding in findings for reason in finding.reasons}
    behind_pathway = _reasons(inference.pathway_why, durable, dates) if inference.pathway_why else ()
    return Explanation(
        inference.pathway,
        findings,
        tuple(r for r in behind_pathway if r not in said),
        _notes(kb, record, facts, inference),
        f"{kb.id} {kb.version} ({kb.status})",
    )


# ---------------------------------------------------------------- references


def _durable_references(record: PatientRecord) -> dict[str, str]:
    """How the bundle referred to each counted resource -> `Type/id` when it has an id."""
    return {r.ref: f"{r.type}/{r.data['id']}" for r in record.resources if r.data.get("id")}


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


def _title(conclusion: Conclusion) -> str:
    title = conclusion.definition.text
    if conclusion.root:
        title += f", {conclusion.root}"
    if conclusion.root or conclusion.sides != ("unspecified",):
        title += f", {_side_text(conclusion.sides)}"
    return title


def _side_text(sides: tuple[str, ...]) -> str:
    if sides == ("unspecified",):
        return "side not documented"
    if "bilateral" in sides or {"left", "right"} <= set(sides):
        return "both sides"
    return f"{sides[0]} side"


def _reasons(why: Provenance, durable: dict[str, str], dates: dict[str, str | None]) -> tuple[Reason, ...]:
    reasons: dict[Reason, None] = {}
    for fact in why.findings:
        reasons.setdefault(_reason(fact, durable, dates))
    return tuple(reasons)


def _reason(fact: InputFact, durable: dict[str, str], dates: dict[str, str | None]) -> Reason:
    """The fact's label without the bundle reference it ends with (that goes to `reference`)."""
    if fact.source is None:
        return Reason(fact.label, None, None, None)
    reference = durable.get(fact.source, fact.source)
    text = fact.label.removesuffix(f" [{fact.source}]")
    kind = reference.split("/")[0] if "/" in reference and ":" not in reference else None
    return Reason(text, kind, dates.get(fact.source), reference)


def _recorded_on(data: dict[str, Any]) -> str | None:
    for name in _DATE_FIELDS:
        value = data.get(name)
        if isinstance(value, dict):
            value = value.get("start")
        if isinstance(value, str) and value:
            return value[:10]
    return None


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


def _notes(kb: Knowledge, record: PatientRecord, facts: FactSet, inference: Inference) -> tuple[Note, ...]:
    pathway = inference.pathway
    conclusions = {c.definition.name for c in inference.conclusions}
    notes = [Note("safety-net", "patient", pathway.safety_net)]
    for item in kb.guidance:
        kind, name = item.target
        if (kind == "pathway" and name == pathway.code) or (kind == "conclusion" and name in conclusions):
            notes.append(
                Note("guidance", item.audience, f"{item.title}: {item.text} ({_cite(kb, item.sources)})")
            )
    for gap in kb.gaps:
        if any(w in inference.present for w in gap.when) and not any(
            m in facts.documented for m in gap.missing
        ):
            notes.append(Note("data-gap", "clinician", f"{gap.text} ({_cite(kb, gap.sources)})"))
    notes.extend(Note("data-gap", "clinician", text) for text in facts.unreadable)
    notes.extend(Note("input-ignored", "clinician", note) for note in record.notes + facts.notes)
    return tuple(notes)


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


def _cite(kb: Knowledge, source_ids: tuple[str, ...]) -> str:
    cited = []
    for sid in source_ids:
        source = kb.sources[sid]
        cited.append(f"{source.title}{', ' + source.url if source.url else ''}")
    return "Source: " + "; ".join(cited)
