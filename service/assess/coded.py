"""What a record's codings say: its clinical concepts, where and on which side, and when.

Shared by the fact builder for Conditions, Observations (and their components) and treatments.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from service.assess.dates import parse_instant
from service.assess.values import codings
from service.knowledge import Concept, Knowledge


@dataclass
class Qualifiers:
    """What a resource's bodySite and codings say about where and which side."""

    sites: list[Concept] = field(default_factory=list)
    levels: list[Concept] = field(default_factory=list)
    sides: set[str] = field(default_factory=set)


def clinical_concepts(kb: Knowledge, concept: Any) -> list[Concept]:
    """The clinical concepts (not qualifiers) a CodeableConcept's codings map to, by name."""
    found: dict[str, Concept] = {}
    for coding in codings(concept):
        for match in kb.concepts_for(coding.get("system", ""), coding.get("code", "")):
            if match.kind == "clinical":
                found.setdefault(match.name, match)
    return sorted(found.values(), key=lambda c: c.name)


def qualifiers_of(kb: Knowledge, codings: Iterable[dict[str, Any]]) -> Qualifiers:
    """The sites, disc levels and sides that codings (bodySite, components) name."""
    result = Qualifiers()
    for coding in codings:
        for concept in kb.concepts_for(coding.get("system", ""), coding.get("code", "")):
            if concept.role == "site" and concept not in result.sites:
                result.sites.append(concept)
            elif concept.role == "disc_level" and concept not in result.levels:
                result.levels.append(concept)
            elif concept.role == "laterality":
                result.sides.add(concept.name)
    return result


def side_of(kb: Knowledge, q: Qualifiers, code: list[dict[str, Any]]) -> str:
    """From the laterality in bodySite, else from a sided ICD-10-CM code (M54.31 right)."""
    sides = set(q.sides)
    if not sides:
        for coding in code:
            known = kb.coding_for(coding.get("system", ""), coding.get("code", ""))
            if known and known.side:
                sides.add(known.side)
    return combined_side(sides)


def combined_side(sides: set[str]) -> str:
    if not sides:
        return "unspecified"
    if "bilateral" in sides or {"left", "right"} <= sides:
        return "bilateral"
    return next(iter(sides))


def has_value(data: dict[str, Any]) -> bool:
    return any(key.startswith("value") for key in data)


def text_of(concept: Any) -> str:
    if isinstance(concept, dict):
        if concept.get("text"):
            return str(concept["text"])
        for coding in codings(concept):
            if coding.get("display"):
                return str(coding["display"])
    return "coded"


def first_instant(*values: Any) -> datetime | None:
    for value in values:
        if isinstance(value, str) and value:
            try:
                return parse_instant(value)
            except ValueError:
                continue
    return None


def condition_onset(data: dict[str, Any], birth: date | None, as_of: datetime) -> datetime | None:
    """When a Condition began: onsetAge from the birth date, else its first readable instant."""
    age = data.get("onsetAge")
    if isinstance(age, dict) and birth is not None and age.get("value") is not None:
        start = datetime(birth.year, birth.month, birth.day, tzinfo=as_of.tzinfo)
        return start + timedelta(days=365.25 * float(age["value"]))
    return first_instant(
        data.get("onsetDateTime"), (data.get("onsetPeriod") or {}).get("start"), data.get("recordedDate")
    )
