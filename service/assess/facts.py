"""Normalise counted resources into clinical facts: codes -> concepts through the knowledge.

Everything that needs arithmetic (durations, ages, grade thresholds, serial declines, how long a
medicine has been taken) is worked out here, because the engine may only compare fields with
constants (durable-rules defect B2). Each fact remembers a plain label and the resource it came
from, for the rationale and `basis`. Values are read by `service.assess.values`; a value that cannot be
read is kept as a data gap, never as a finding.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from service.assess.coded import (
    Qualifiers,
    clinical_concepts,
    combined_side,
    condition_onset,
    first_instant,
    has_value,
    qualifiers_of,
    side_of,
    text_of,
)
from service.assess.dates import age_in_years
from service.assess.fact import FactSet, FactValue, InputFact
from service.assess.intake import PatientRecord, Resource
from service.assess.relations import mark_long_term, mark_patterns, mark_symmetric, read_series
from service.assess.values import Unreadable, codings, graded, presence
from service.knowledge import Concept, Knowledge
from service.knowledge.vocabulary import FindingField

_ACTIVE_TREATMENT = {"active", "in-progress"}


def build_facts(record: PatientRecord, kb: Knowledge, as_of: datetime) -> FactSet:
    builder = _Builder(
        kb,
        as_of,
        record.birth_date,
        {r.ref: r.data.get("code") for r in record.resources if r.type == "Observation"},
    )
    for resource in record.resources:
        builder.add(resource)
    if record.birth_date is not None:
        age = age_in_years(record.birth_date, as_of.date())
        builder.facts.append(
            InputFact(
                "patient", (("older", age >= kb.parameter("older_age_min_years")),), f"Age {age} years", None
            )
        )
    facts = read_series(builder.facts, builder.strength_series)
    facts = mark_patterns(facts, kb.neuroanatomy.mimics, "active", "explained")
    facts = mark_symmetric(mark_patterns(facts, kb.neuroanatomy.negatives, "absent", "contradicted"))
    facts = mark_long_term(
        facts, builder.treatment_starts, as_of, kb.parameter("long_term_medication_min_days")
    )
    return FactSet(
        tuple(sorted(facts, key=InputFact.sort_key)),
        frozenset(builder.documented),
        tuple(builder.notes),
        tuple(builder.unreadable),
    )


class _Builder:
    def __init__(self, kb: Knowledge, as_of: datetime, birth: date | None, codes_of: dict[str, Any]) -> None:
        self.kb, self.as_of, self.birth = kb, as_of, birth
        self.codes_of = codes_of  # Observation ref -> its code, to recognise restatements
        self.facts: list[InputFact] = []
        self.documented: set[str] = set()
        self.notes: list[str] = []
        self.unreadable: list[str] = []
        self.strength_series: dict[InputFact, tuple[datetime | None, float]] = {}
        self.treatment_starts: dict[InputFact, datetime | None] = {}

    # -- per resource type

    def add(self, resource: Resource) -> None:
        data = resource.data
        if resource.type == "Condition":
            self._add_condition(resource, data)
        elif resource.type == "Observation":
            self._add_observation(resource, data)
        else:
            self._add_treatment(resource, data)

    def _add_treatment(self, resource: Resource, data: dict[str, Any]) -> None:
        """A procedure or medicine: its status, and when it started (for long-term use)."""
        if resource.type == "Procedure":
            code = data.get("code")
            start = first_instant(
                data.get("performedDateTime"), (data.get("performedPeriod") or {}).get("start")
            )
        else:
            code = data.get("medicationCodeableConcept")
            validity = (data.get("dispenseRequest") or {}).get("validityPeriod") or {}
            start = first_instant(
                data.get("effectiveDateTime"),
                (data.get("effectivePeriod") or {}).get("start"),
                data.get("authoredOn"),
                validity.get("start"),
            )
        status = "active" if data.get("status") in _ACTIVE_TREATMENT else str(data.get("status"))
        for concept in clinical_concepts(self.kb, code):
            self.documented.add(concept.name)
            recent = start is None or self._days_since(start) <= self.kb.parameter(
                "spinal_context_procedure_max_days"
            )
            fact = InputFact(
                "treatment",
                (("concept", concept.name), ("long_term", False), ("recent", recent), ("status", status)),
                f"{concept.display} ({text_of(code)}"
                f"{'' if start is None else ', ' + start.date().isoformat()}) [{resource.ref}]",
                resource.ref,
            )
            self.facts.append(fact)
            self.treatment_starts[fact] = start

    def _add_condition(self, resource: Resource, data: dict[str, Any]) -> None:
        qualifiers = qualifiers_of(self.kb, [c for site in data.get("bodySite") or [] for c in codings(site)])
        side = side_of(self.kb, qualifiers, codings(data.get("code")))
        onset = condition_onset(data, self.birth, self.as_of)
        status = "history" if resource.history else "active"
        for concept in clinical_concepts(self.kb, data.get("code")):
            self.documented.add(concept.name)
            if concept.measure:
                continue
            self._add_finding(
                resource,
                concept,
                qualifiers,
                side,
                onset,
                (("status", status),),
                "" if status == "active" else " (history)",
            )

    def _add_observation(self, resource: Resource, data: dict[str, Any]) -> None:
        """The Observation's own code and value, then each component whose code means something
        else (a component coded like its parent, such as a straight-leg raise's angle, is part of
        the parent's finding). A panel (hasMember, no value) is only a heading for its members, and
        a concept restated from a source in the bundle (derivedFrom) is read once, at the source."""
        qualifiers = qualifiers_of(self.kb, codings(data.get("bodySite")))
        side = side_of(self.kb, qualifiers, codings(data.get("code")))
        when = first_instant(
            data.get("effectiveDateTime"),
            (data.get("effectivePeriod") or {}).get("start"),
            data.get("issued"),
        )
        own = clinical_concepts(self.kb, data.get("code"))
        restated = {
            c.name
            for source in resource.derived_from
            for c in clinical_concepts(self.kb, self.codes_of.get(source))
        }
        if restated & {c.name for c in own}:
            self.notes.append(f"Read once: {resource.ref} restates its source (derivedFrom).")
        if not (data.get("hasMember") and not has_value(data)):
            self._read(resource, data, [c for c in own if c.name not in restated], qualifiers, side, when)
        for component in data.get("component") or []:
            if not isinstance(component, dict) or component.get("dataAbsentReason"):
                continue
            concepts = [c for c in clinical_concepts(self.kb, component.get("code")) if c not in own]
            if concepts:
                sides = qualifiers_of(self.kb, codings(component.get("code"))).sides
                self._read(
                    resource, component, concepts, qualifiers, combined_side(sides) if sides else side, when
                )

    def _read(
        self,
        resource: Resource,
        part: dict[str, Any],
        concepts: list[Concept],
        qualifiers: Qualifiers,
        side: str,
        when: datetime | None,
    ) -> None:
        """One Observation or component: a finding for each concept its code means, by its value."""
        for concept in concepts:
            self.documented.add(concept.name)
            if concept.measure is None:
                state = presence(part, self.kb)
                if isinstance(state, Unreadable):
                    self._unreadable(resource, concept, state)
                else:  # a documented negative is a fact of its own, that rules can count against
                    self._add_finding(
                        resource,
                        concept,
                        qualifiers,
                        side,
                        when,
                        () if state else (("status", "absent"),),
                        "" if state else " (documented absent)",
                    )
            elif concept.measure == "coded_result":
                for found in clinical_concepts(self.kb, part.get("valueCodeableConcept")):
                    self.documented.add(found.name)
                    self._add_finding(
                        resource,
                        found,
                        qualifiers,
                        side,
                        when,
                        (("result", True),),
                        f" on {concept.display.lower()}",
                    )
            else:
                value = graded(concept, part, self.kb)
                if isinstance(value, Unreadable):
                    self._unreadable(resource, concept, value)
                    continue
                fact = self._add_finding(
                    resource, concept, qualifiers, side, when, (("grade", value.grade),), f": {value.shown}"
                )
                if concept.measure == "strength":
                    self.strength_series[fact] = (when, value.number)

    def _unreadable(self, resource: Resource, concept: Concept, why: Unreadable) -> None:
        """Named so that it still means something once stored: `Type/id`, else type and date."""
        rid = resource.data.get("id")
        when = resource.data.get("effectiveDateTime") or resource.data.get("issued")
        where = (
            f"{resource.type}/{rid}"
            if isinstance(rid, str) and rid
            else f"an {resource.type}" + (f" of {str(when)[:10]}" if when else "")
        )
        self.unreadable.append(
            f"{concept.display} is recorded in {where} but {why.reason}, "
            "so it was not used: check it and record it in coded form."
        )

    # -- shared pieces

    def _add_finding(
        self,
        resource: Resource,
        concept: Concept,
        q: Qualifiers,
        side: str,
        onset: datetime | None,
        extra: tuple[tuple[FindingField, FactValue], ...],
        detail: str = "",
    ) -> InputFact:
        level = q.levels[0].name if q.levels else "none"
        sites: list[Concept | None] = list(q.sites) or [None]
        fact = None
        for site in sites:
            attrs: dict[FindingField, FactValue] = {
                "concept": concept.name,
                "site": site.name if site else "none",
                "side": side,
                "status": "active",
                "level": level,
                "progressive": False,
                "symmetric": False,
                "explained": False,
                "contradicted": False,
                "result": False,
                **self._timing(onset),
                **dict(extra),
            }
            where = ", ".join(
                x
                for x in (
                    site.display.lower() if site else "",
                    q.levels[0].display if q.levels else "",
                    side if side != "unspecified" else "",
                )
                if x
            )
            label = f"{concept.display}{' (' + where + ')' if where else ''}{detail} [{resource.ref}]"
            fact = InputFact("finding", tuple(sorted(attrs.items())), label, resource.ref)
            self.facts.append(fact)
        assert fact is not None
        return fact

    def _timing(self, onset: datetime | None) -> dict[FindingField, FactValue]:
        """Recent: began within the CES window, or unknown; new: within the new-onset window, or
        unknown; current: within the current-back-problem window, or unknown (so serious-pathology
        flags need back pain that is not years old); persisting (6 weeks, radicular pain) and
        long-standing (3 months, stenosis): known and long enough."""
        if onset is None:
            return {"recent": True, "new": True, "current": True, "persisting": False, "long_standing": False}
        days = self._days_since(onset)
        return {
            "recent": days <= self.kb.parameter("ces_acute_max_days"),
            "new": days <= self.kb.parameter("new_onset_max_days"),
            "current": days <= self.kb.parameter("current_back_problem_max_days"),
            "persisting": days >= self.kb.parameter("radicular_persisting_min_days"),
            "long_standing": days >= self.kb.parameter("stenosis_persisting_min_days"),
        }

    def _days_since(self, moment: datetime) -> float:
        return (self.as_of - moment) / timedelta(days=1)
