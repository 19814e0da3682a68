"""The Explanation of an inference: each conclusion with its reasons in plain words, the notes.

Made first, then rendered: as the RiskAssessment (report.py), its narrative and CDS cards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.assess.fact import FactSet, InputFact
from service.assess.intake import PatientRecord
from service.assess.reasoning import Conclusion, Inference, Provenance
from service.knowledge import Knowledge, PathwayDef

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


def _durable_references(record: PatientRecord) -> dict[str, str]:
    """How the bundle referred to each counted resource -> `Type/id` when it has an id."""
    return {r.ref: f"{r.type}/{r.data['id']}" for r in record.resources if r.data.get("id")}


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


def _cite(kb: Knowledge, source_ids: tuple[str, ...]) -> str:
    cited = []
    for sid in source_ids:
        source = kb.sources[sid]
        cited.append(f"{source.title}{', ' + source.url if source.url else ''}")
    return "Source: " + "; ".join(cited)
