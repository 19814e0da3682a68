"""Facts read against each other: serial grades, peripheral lesions and documented negatives,
symmetry, long-term use.

Each step returns the facts with some of them revised (a field set, a note in the label); the
engine cannot compare facts with each other (durable-rules defect B2), so it is done here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from service.assess.fact import InputFact
from service.knowledge import Mimic
from service.knowledge.vocabulary import FindingField


def read_series(
    facts: list[InputFact], series: dict[InputFact, tuple[datetime | None, float]]
) -> list[InputFact]:
    """Serial MRC grades of one muscle and side are read as a clinician reads them: the latest
    examination decides severity, so earlier grades are marked superseded (no rule matches them);
    a latest grade below an earlier one is progressive, above an earlier one recovering."""
    groups: dict[tuple[Any, Any], list[tuple[datetime, float, InputFact]]] = {}
    for fact, (when, grade) in series.items():
        if when is not None:
            groups.setdefault((fact.get("concept"), fact.get("side")), []).append((when, grade, fact))
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


def mark_patterns(
    facts: list[InputFact], patterns: tuple[Mimic, ...], status: str, field: FindingField
) -> list[InputFact]:
    """Sets `field` on the findings a documented pattern accounts for on its side (a pattern
    recorded without a side covers both). Mimics (`status` active, field `explained`): peroneal
    palsy explains weak dorsiflexion and dorsum-of-foot numbness, tarsal tunnel syndrome the
    sole, preserved inversion a weak dorsiflexion: no root sign there. Negatives (`status`
    absent, field `contradicted`): a straight-leg raise negative, or radiating pain denied, on
    that side counts against the radicular symptoms and foot symptoms recorded there."""
    documented = list(
        dict.fromkeys(  # distinct (pattern, side): a record may repeat a lesion
            (pattern, str(f.get("side")))
            for pattern in patterns
            for f in facts
            if f.kind == "finding"
            and f.get("status") == status
            and f.get("concept") == pattern.concept
            and (pattern.grade is None or f.get("grade") == pattern.grade)
        )
    )
    replaced = {}
    for fact in facts:
        if fact.kind != "finding" or fact.get("status") == "absent":
            continue  # a documented negative is no sign to explain or contradict
        for pattern, side in documented:
            if (
                side in (fact.get("side"), "bilateral", "unspecified")
                and (fact.get("concept") in pattern.findings or fact.get("site") in pattern.sensory_sites)
                and not (fact.get("concept") == pattern.concept and fact.get("status") == status)
            ):
                replaced[fact] = fact.revised({field: True}, pattern.label)
                break
    return [replaced.get(f, f) for f in facts]


def mark_symmetric(facts: list[InputFact]) -> list[InputFact]:
    """A finding recorded on both sides (as bilateral, or left and right separately, with the
    same concept, site and grade) is symmetric: length-dependent in a polyneuropathy."""
    sides: dict[tuple[Any, ...], set[Any]] = {}
    for fact in facts:
        if fact.kind == "finding":
            sides.setdefault(_symmetry_key(fact), set()).add(fact.get("side"))
    both = {key for key, found in sides.items() if "bilateral" in found or {"left", "right"} <= found}
    return [
        f.revised({"symmetric": True}, "on both sides")
        if f.kind == "finding" and _symmetry_key(f) in both
        else f
        for f in facts
    ]


def _symmetry_key(fact: InputFact) -> tuple[Any, ...]:
    return fact.get("concept"), fact.get("site"), fact.get("grade"), fact.get("status")


def mark_long_term(
    facts: list[InputFact], starts: dict[InputFact, datetime | None], as_of: datetime, min_days: float
) -> list[InputFact]:
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
        if (
            fact.get("status") == "active"
            and began is not None
            and (as_of - began) / timedelta(days=1) >= min_days
        ):
            replaced[fact] = fact.revised({"long_term": True}, f"taken since {began.date().isoformat()}")
    return [replaced.get(f, f) for f in facts]
