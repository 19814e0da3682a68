"""Facts read against each other: serial grades, peripheral lesions, symmetry, long-term use.

Each step returns the facts with some of them revised (a field set, a note in the label); the
engine cannot compare facts with each other (durable-rules defect B2), so it is done here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from service.assess.fact import InputFact
from service.knowledge import Mimic


def read_series(facts: list[InputFact],
                 series: dict[InputFact, tuple[datetime | None, float]]) -> list[InputFact]:
    """Serial MRC grades of one muscle and side are read as a clinician reads them: the latest
    examination decides severity, so earlier grades are marked superseded (no rule matches them);
    a latest grade below an earlier one is progressive, above an earlier one recovering."""
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
        latest, earlier = timed[-1], timed[:-1]
        for _, _, fact in earlier:
            replaced[fact] = fact.revised({"grade": "superseded"}, "superseded by a later grade")
        if latest[1] < max(grade for _, grade, _ in earlier):
            replaced[latest[2]] = latest[2].revised({"progressive": True}, "falling")
        elif latest[1] > min(grade for _, grade, _ in earlier):
            replaced[latest[2]] = latest[2].revised({}, "recovering")
    return [replaced.get(f, f) for f in facts]


def mark_explained(facts: list[InputFact], mimics: tuple[Mimic, ...]) -> list[InputFact]:
    """A finding that a documented peripheral lesion (or examination pattern) explains on its
    side is no root sign there: peroneal palsy explains weak dorsiflexion and dorsum-of-foot
    numbness, tarsal tunnel syndrome the sole, preserved inversion a weak dorsiflexion."""
    lesions = list(dict.fromkeys(  # distinct (lesion, side): a record may repeat a lesion
        (mimic, str(f.get("side"))) for mimic in mimics for f in facts
        if f.kind == "finding" and f.get("status") == "active"
        and f.get("concept") == mimic.concept
        and (mimic.grade is None or f.get("grade") == mimic.grade)))
    replaced = {}
    for fact in facts:
        for mimic, side in lesions:
            if fact.kind == "finding" and side in (fact.get("side"), "bilateral", "unspecified") \
                    and (fact.get("concept") in mimic.findings or fact.get("site")
                         in mimic.sensory_sites) and fact.get("concept") != mimic.concept:
                replaced[fact] = fact.revised({"explained": True}, mimic.label)
                break
    return [replaced.get(f, f) for f in facts]


def mark_symmetric(facts: list[InputFact]) -> list[InputFact]:
    """A finding recorded on both sides (as bilateral, or left and right separately, with the
    same concept, site and grade) is symmetric: length-dependent in a polyneuropathy."""
    sides: dict[tuple[Any, ...], set[Any]] = {}
    for fact in facts:
        if fact.kind == "finding":
            sides.setdefault(_symmetry_key(fact), set()).add(fact.get("side"))
    both = {key for key, found in sides.items()
            if "bilateral" in found or {"left", "right"} <= found}
    return [f.revised({"symmetric": True}, "on both sides")
            if f.kind == "finding" and _symmetry_key(f) in both else f for f in facts]


def _symmetry_key(fact: InputFact) -> tuple[Any, ...]:
    return fact.get("concept"), fact.get("site"), fact.get("grade"), fact.get("status")



def mark_long_term(facts: list[InputFact], starts: dict[InputFact, datetime | None],
                    as_of: datetime, min_days: float) -> list[InputFact]:
    """A treatment taken now whose first recorded start (of any record of that concept, so that
    repeat prescriptions count together) lies at least `min_days` back is long-term."""
    first: dict[Any, datetime] = {}
    for fact, start in starts.items():
        concept = fact.get("concept")
        if start is not None and (concept not in first or start < first[concept]):
            first[concept] = start
    replaced = {}
    for fact in starts:
        began = first.get(fact.get("concept"))
        if fact.get("status") == "active" and began is not None and (
                as_of - began) / timedelta(days=1) >= min_days:
            replaced[fact] = fact.revised({"long_term": True},
                                      f"taken since {began.date().isoformat()}")
    return [replaced.get(f, f) for f in facts]


