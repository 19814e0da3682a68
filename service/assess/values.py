"""Read a finding's value the way EHRs, coders and flowsheets write it (contract §2).

One Observation, or one of its components, at a time: presence (valueBoolean, "absent" codes,
interpretation, free text through the knowledge lexicon), measured quantities in UCUM units
converted to the unit of the concept's threshold, and examination grades (reflex 0-4, MRC 0-5).
A value that cannot be read says why, so that it becomes a data gap and never a guess.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.knowledge import Concept, Knowledge, normalise_text

UCUM = "http://unitsofmeasure.org"
_EXAM_SYSTEM_GRADES = {"absent": 0, "diminished": 1, "normal": 2, "brisk": 3}
_MRC_NORMAL = 5
_REFLEX_WORDS = ("absent", "diminished", "normal", "brisk", "clonus")  # contract §2, grades 0-4
# A measured value past its threshold is `high` (fever, retention) or, for `<=`, `low` (an
# ankle-brachial index at or below the PAD threshold); any other value is `normal`.
_COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    ">=": (operator.ge, "high"),
    ">": (operator.gt, "high"),
    "<=": (operator.le, "low"),
}


@dataclass(frozen=True)
class Unreadable:
    reason: str  # why, in words for the data-gap note (never the value itself)


@dataclass(frozen=True)
class Graded:
    grade: str  # the class rules match on (reduced/normal/brisk, severe/weak/normal, high/normal)
    shown: str  # how the value reads in a rationale
    number: float


def presence(part: dict[str, Any], kb: Knowledge) -> bool | Unreadable:
    """Present unless the value says absent; free text must be a word of the lexicon."""
    if part.get("valueBoolean") is False:
        return False
    values = codings(part.get("valueCodeableConcept")) + [
        c for i in part.get("interpretation") or [] for c in codings(i)
    ]
    if any(
        concept.role == "absent_value"
        for c in values
        for concept in kb.concepts_for(c.get("system", ""), c.get("code", ""))
    ):
        return False
    text = part.get("valueString")
    if isinstance(text, str):
        word = normalise_text(text)
        if word in kb.lexicon.absent:
            return False
        if word in kb.lexicon.present:
            return True
        return Unreadable("its text value says neither yes nor no")
    return True


def graded(concept: Concept, part: dict[str, Any], kb: Knowledge) -> Graded | Unreadable:
    """A reflex grade, an MRC grade or a measured quantity, classed by the knowledge's thresholds."""
    if concept.measure == "reflex":
        return _reflex(part, kb)
    number = quantity(concept, part, kb)
    if isinstance(number, Unreadable):
        return number
    if concept.measure == "strength":
        return _strength(number, kb)
    compare, grade = _COMPARISONS[concept.comparison]
    past = compare(number, kb.parameter(concept.threshold or ""))
    return Graded(grade if past else "normal", _shown_quantity(part, number, concept), number)


def quantity(concept: Concept, part: dict[str, Any], kb: Knowledge) -> float | Unreadable:
    """The value in the unit of the concept's threshold (valueInteger is a count in that unit)."""
    if isinstance(part.get("valueInteger"), int) and not isinstance(part["valueInteger"], bool):
        return float(part["valueInteger"])
    value = part.get("valueQuantity")
    if not isinstance(value, dict):
        return Unreadable("it has no numeric value")
    number = value.get("value")
    if not isinstance(number, int | float) or isinstance(number, bool):
        return Unreadable("it has no numeric value")
    if value.get("comparator"):
        return Unreadable(f"its value is a bound ({value['comparator']}), not a measurement")
    unit = _unit_of(value) or concept.default_unit
    if concept.unit is None:
        return float(number)
    if unit is None:
        return Unreadable(f"it gives no unit (expected {concept.unit})")
    converted = kb.units.convert(float(number), unit, concept.unit)
    if converted is None:
        return Unreadable(f"its unit cannot be converted to {concept.unit}")
    return converted


def _unit_of(value: dict[str, Any]) -> str | None:
    """The UCUM code when the quantity is coded in UCUM (or names no system), else its `unit`."""
    code = value.get("code")
    if isinstance(code, str) and code and value.get("system") in (None, UCUM):
        return code
    unit = value.get("unit")
    return unit if isinstance(unit, str) and unit else None


def _reflex(part: dict[str, Any], kb: Knowledge) -> Graded | Unreadable:
    value = part.get("valueInteger")
    if value is None:
        for coding in codings(part.get("valueCodeableConcept")):
            value = _EXAM_SYSTEM_GRADES.get(coding.get("code", ""), value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 4:
        return Unreadable("it has no reflex grade 0-4")
    shown = f"grade {value} ({_REFLEX_WORDS[value]})"
    if value <= kb.parameter("reduced_reflex_max_grade"):
        return Graded("reduced", shown, value)
    if value >= kb.parameter("brisk_reflex_min_grade"):
        return Graded("brisk", shown, value)
    return Graded("normal", shown, value)


def _strength(number: float, kb: Knowledge) -> Graded | Unreadable:
    if not 0 <= number <= _MRC_NORMAL:
        return Unreadable("it has no MRC grade 0-5")
    if number <= kb.parameter("severe_weakness_max_mrc"):
        return Graded("severe", f"MRC {number:g}/5 (severe weakness)", number)
    return Graded("weak" if number < _MRC_NORMAL else "normal", f"MRC {number:g}/5", number)


def _shown_quantity(part: dict[str, Any], number: float, concept: Concept) -> str:
    value = part.get("valueQuantity") or {}
    given = f"{value.get('value', number):g} {value.get('unit') or _unit_of(value) or ''}".strip()
    if concept.unit is None or _unit_of(value) in (None, concept.unit):
        return given
    return f"{given} = {number:g} {concept.unit}"


def codings(concept: Any) -> list[dict[str, Any]]:
    """The codings of a CodeableConcept, tolerating anything else (an unread shape has none, and
    a coding whose system or code is not text, such as a JSON null, is not a coding)."""
    if not isinstance(concept, dict):
        return []
    return [
        c
        for c in concept.get("coding") or []
        if isinstance(c, dict) and isinstance(c.get("system", ""), str) and isinstance(c.get("code", ""), str)
    ]
