"""Normalise counted resources into clinical facts: codes -> concepts through the knowledge.

Everything that needs arithmetic (durations, ages, grade thresholds, serial declines) is worked
out here, because the engine may only compare fields with constants (durable-rules defect B2).
Each fact remembers a plain label and the resource it came from, for the rationale and `basis`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from service.dates import age_in_years, parse_instant
from service.intake import PatientRecord, Resource
from service.knowledge import Concept, Knowledge

FactValue = str | bool
_EXAM_SYSTEM_GRADES = {"absent": 0, "diminished": 1, "normal": 2, "brisk": 3}
_MRC_NORMAL = 5


@dataclass(frozen=True)
class InputFact:
    kind: str  # finding | treatment | patient
    attrs: tuple[tuple[str, FactValue], ...]
    label: str
    source: str | None

    def get(self, name: str) -> FactValue | None:
        return dict(self.attrs).get(name)

    def sort_key(self) -> tuple[str, ...]:
        return (self.kind, repr(self.attrs), self.source or "", self.label)


@dataclass(frozen=True)
class FactSet:
    facts: tuple[InputFact, ...]
    documented: frozenset[str]  # concepts recorded at all, present or absent
    notes: tuple[str, ...]


@dataclass
class _Qualifiers:
    """What a resource's bodySite and codings say about where and which side."""

    sites: list[Concept] = field(default_factory=list)
    levels: list[Concept] = field(default_factory=list)
    sides: set[str] = field(default_factory=set)


def build_facts(record: PatientRecord, kb: Knowledge, as_of: datetime) -> FactSet:
    builder = _Builder(kb, as_of, record.birth_date)
    for resource in record.resources:
        builder.add(resource)
    if record.birth_date is not None:
        age = age_in_years(record.birth_date, as_of.date())
        builder.facts.append(InputFact(
            "patient", (("older", age >= kb.parameter("older_age_min_years")),),
            f"Age {age} years", None))
    facts = sorted(_mark_progressive(builder.facts, builder.strength_series),
                   key=InputFact.sort_key)
    return FactSet(tuple(facts), frozenset(builder.documented), tuple(builder.notes))


class _Builder:
    def __init__(self, kb: Knowledge, as_of: datetime, birth: date | None) -> None:
        self.kb, self.as_of, self.birth = kb, as_of, birth
        self.facts: list[InputFact] = []
        self.documented: set[str] = set()
        self.notes: list[str] = []
        self.strength_series: dict[InputFact, tuple[datetime | None, float]] = {}

    # -- per resource type

    def add(self, resource: Resource) -> None:
        data = resource.data
        if resource.type == "Condition":
            self._add_condition(resource, data)
        elif resource.type == "Observation":
            self._add_observation(resource, data)
        else:
            code = data.get("code") if resource.type == "Procedure" else data.get(
                "medicationCodeableConcept")
            for concept in self._concepts(code):
                self.documented.add(concept.name)
                self.facts.append(InputFact(
                    "treatment", (("concept", concept.name), ("status", "active")),
                    f"{concept.display} ({_text_of(code)}) [{resource.ref}]", resource.ref))

    def _add_condition(self, resource: Resource, data: dict[str, Any]) -> None:
        qualifiers = self._qualifiers(c for site in data.get("bodySite") or []
                                      for c in _codings(site))
        side = self._side(qualifiers, _codings(data.get("code")))
        onset = self._condition_onset(data)
        status = "history" if resource.history else "active"
        for concept in self._concepts(data.get("code")):
            self.documented.add(concept.name)
            if concept.measure:
                continue
            self._add_finding(resource, concept, qualifiers, side, onset,
                              (("status", status),), "" if status == "active" else " (history)")

    def _add_observation(self, resource: Resource, data: dict[str, Any]) -> None:
        qualifiers = self._qualifiers(_codings(data.get("bodySite")))
        side = self._side(qualifiers, _codings(data.get("code")))
        when = _first_instant(data.get("effectiveDateTime"),
                              (data.get("effectivePeriod") or {}).get("start"), data.get("issued"))
        for concept in self._concepts(data.get("code")):
            self.documented.add(concept.name)
            if concept.measure is None:
                if not self._is_absent(data):
                    self._add_finding(resource, concept, qualifiers, side, when, ())
            elif concept.measure == "coded_result":
                for found in self._concepts(data.get("valueCodeableConcept")):
                    self.documented.add(found.name)
                    self._add_finding(resource, found, qualifiers, side, when, (),
                                      f" on {concept.display.lower()}")
            else:
                graded = self._grade(concept, data)
                if graded is None:
                    self.notes.append(f"Ignored {resource.ref}: {concept.display} has no "
                                      "readable value.")
                    continue
                grade, shown, number = graded
                fact = self._add_finding(resource, concept, qualifiers, side, when,
                                         (("grade", grade),), f": {shown}")
                if concept.measure == "strength":
                    self.strength_series[fact] = (when, number)

    # -- shared pieces

    def _add_finding(self, resource: Resource, concept: Concept, q: _Qualifiers, side: str,
                     onset: datetime | None, extra: tuple[tuple[str, FactValue], ...],
                     detail: str = "") -> InputFact:
        level = q.levels[0].name if q.levels else "none"
        sites: list[Concept | None] = list(q.sites) or [None]
        fact = None
        for site in sites:
            attrs = {"concept": concept.name, "site": site.name if site else "none", "side": side,
                     "status": "active", "level": level, "progressive": False,
                     **self._timing(onset), **dict(extra)}
            where = ", ".join(x for x in (site.display.lower() if site else "",
                                          q.levels[0].display if q.levels else "",
                                          side if side != "unspecified" else "") if x)
            label = f"{concept.display}{' (' + where + ')' if where else ''}{detail} [{resource.ref}]"
            fact = InputFact("finding", tuple(sorted(attrs.items())), label, resource.ref)
            self.facts.append(fact)
        assert fact is not None
        return fact

    def _timing(self, onset: datetime | None) -> dict[str, bool]:
        """Recent: began within the CES window, or unknown; persisting: known and long enough."""
        if onset is None:
            return {"recent": True, "persisting": False}
        days = (self.as_of - onset) / timedelta(days=1)
        return {"recent": days <= self.kb.parameter("ces_acute_max_days"),
                "persisting": days >= self.kb.parameter("radicular_persisting_min_days")}

    def _concepts(self, concept: Any) -> list[Concept]:
        found: dict[str, Concept] = {}
        for coding in _codings(concept):
            for match in self.kb.concepts_for(coding.get("system", ""), coding.get("code", "")):
                if match.kind == "clinical":
                    found.setdefault(match.name, match)
        return sorted(found.values(), key=lambda c: c.name)

    def _qualifiers(self, codings: Iterable[dict[str, Any]]) -> _Qualifiers:
        result = _Qualifiers()
        for coding in codings:
            for concept in self.kb.concepts_for(coding.get("system", ""), coding.get("code", "")):
                if concept.role == "site" and concept not in result.sites:
                    result.sites.append(concept)
                elif concept.role == "disc_level" and concept not in result.levels:
                    result.levels.append(concept)
                elif concept.role == "laterality":
                    result.sides.add(concept.name)
        return result

    def _side(self, q: _Qualifiers, codings: list[dict[str, Any]]) -> str:
        sides = set(q.sides)
        if not sides:
            for coding in codings:
                known = self.kb.coding_for(coding.get("system", ""), coding.get("code", ""))
                if known and known.side:
                    sides.add(known.side)
        if not sides:
            return "unspecified"
        if "bilateral" in sides or {"left", "right"} <= sides:
            return "bilateral"
        return sides.pop()

    def _is_absent(self, data: dict[str, Any]) -> bool:
        if data.get("valueBoolean") is False:
            return True
        codings = _codings(data.get("valueCodeableConcept")) + [
            c for i in data.get("interpretation") or [] for c in _codings(i)]
        return any(concept.role == "absent_value" for c in codings
                   for concept in self.kb.concepts_for(c.get("system", ""), c.get("code", "")))

    def _grade(self, concept: Concept, data: dict[str, Any]) -> tuple[str, str, float] | None:
        """A graded value -> (class the rules match on, how it reads, the number)."""
        kb = self.kb
        if concept.measure == "reflex":
            value = data.get("valueInteger")
            if value is None:
                for coding in _codings(data.get("valueCodeableConcept")):
                    value = _EXAM_SYSTEM_GRADES.get(coding.get("code", ""), value)
            if not isinstance(value, int) or not 0 <= value <= 4:
                return None
            if value <= kb.parameter("reduced_reflex_max_grade"):
                return "reduced", f"grade {value} (reduced)", value
            if value >= kb.parameter("brisk_reflex_min_grade"):
                return "brisk", f"grade {value} (brisk)", value
            return "normal", f"grade {value} (normal)", value
        number = data.get("valueInteger")
        if number is None:
            number = (data.get("valueQuantity") or {}).get("value")
        if not isinstance(number, int | float) or isinstance(number, bool):
            return None
        if concept.measure == "strength":
            if not 0 <= number <= _MRC_NORMAL:
                return None
            if number <= kb.parameter("severe_weakness_max_mrc"):
                return "severe", f"MRC {number:g}/5 (severe weakness)", number
            return ("weak" if number < _MRC_NORMAL else "normal"), f"MRC {number:g}/5", number
        threshold = kb.parameter(concept.threshold or "")
        unit = (data.get("valueQuantity") or {}).get("unit", "")
        return ("high" if number >= threshold else "normal"), f"{number:g} {unit}".strip(), number

    def _condition_onset(self, data: dict[str, Any]) -> datetime | None:
        age = data.get("onsetAge")
        if isinstance(age, dict) and self.birth is not None and age.get("value") is not None:
            start = datetime(self.birth.year, self.birth.month, self.birth.day,
                             tzinfo=self.as_of.tzinfo)
            return start + timedelta(days=365.25 * float(age["value"]))
        return _first_instant(data.get("onsetDateTime"),
                              (data.get("onsetPeriod") or {}).get("start"),
                              data.get("recordedDate"))


def _mark_progressive(facts: list[InputFact],
                      series: dict[InputFact, tuple[datetime | None, float]]) -> list[InputFact]:
    """Serial MRC grades of one muscle and side that fall over time mark the latest progressive."""
    groups: dict[tuple[Any, Any], list[tuple[datetime, float, InputFact]]] = {}
    for fact, (when, grade) in series.items():
        if when is not None:
            groups.setdefault((fact.get("concept"), fact.get("side")), []).append(
                (when, grade, fact))
    replaced: dict[InputFact, InputFact] = {}
    for group in groups.values():
        timed = sorted(group, key=lambda item: (item[0], item[1]))
        if len(timed) < 2:
            continue
        if timed[-1][1] < max(grade for _, grade, _ in timed[:-1]):
            latest = timed[-1][2]
            attrs = tuple(sorted({**dict(latest.attrs), "progressive": True}.items()))
            replaced[latest] = InputFact(latest.kind, attrs,
                                         latest.label.replace(" [", ", falling [", 1),
                                         latest.source)
    return [replaced.get(f, f) for f in facts]


def _codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def _text_of(concept: Any) -> str:
    if isinstance(concept, dict):
        if concept.get("text"):
            return str(concept["text"])
        for coding in _codings(concept):
            if coding.get("display"):
                return str(coding["display"])
    return "coded"


def _first_instant(*values: Any) -> datetime | None:
    for value in values:
        if isinstance(value, str) and value:
            try:
                return parse_instant(value)
            except ValueError:
                continue
    return None
