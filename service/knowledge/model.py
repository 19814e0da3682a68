"""The frozen knowledge objects a loaded knowledge base is made of, and its code index."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from service.knowledge.vocabulary import (
    ICD10CM,
)

# ---------------------------------------------------------------- frozen knowledge objects


@dataclass(frozen=True)
class Coding:
    system: str  # full URI
    code: str
    display: str
    tag: str
    ref: str
    side: str | None = None
    descendants: bool = False  # ICD-10-CM: the code and every code below it (Z85 -> Z85.3)


@dataclass(frozen=True)
class Concept:
    name: str
    display: str
    kind: str  # clinical | qualifier
    codes: tuple[Coding, ...]
    role: str | None = None  # qualifiers only
    measure: str | None = None
    threshold: str | None = None
    unit: str | None = None  # UCUM unit the threshold is in (quantity, strength)
    default_unit: str | None = None  # assumed when a quantity gives no unit at all
    comparison: str = ">="  # value `comparison` threshold -> grade high (low for "<=")


@dataclass(frozen=True)
class Lexicon:
    """Free-text values of a finding that mean absent or present; any other text is unreadable."""

    absent: frozenset[str]
    present: frozenset[str]


@dataclass(frozen=True)
class Unit:
    """A UCUM unit the service reads: its kind, and `value * scale + offset` in the kind's base."""

    code: str
    kind: str
    scale: float
    offset: float


@dataclass(frozen=True)
class Units:
    by_name: Mapping[str, Unit]  # UCUM code and every accepted spelling -> unit

    def convert(self, value: float, unit: str, target: str) -> float | None:
        """`value` in `unit` expressed in `target`, or None when either is unknown or the two
        measure different things (a temperature is never a volume)."""
        source, goal = self.by_name.get(unit), self.by_name.get(target)
        if source is None or goal is None or source.kind != goal.kind:
            return None
        return round((value * source.scale + source.offset - goal.offset) / goal.scale, 9)


@dataclass(frozen=True)
class Condition:
    """One `when` item: the fact kind, field -> accepted values, and equality joins."""

    fact: str
    match: tuple[tuple[str, tuple[str | bool, ...]], ...]
    same: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Derivation:
    fact: str  # evidence | conclusion | pathway
    name: str
    risk: str | None
    set: tuple[tuple[str, str], ...]
    copy: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    sources: tuple[str, ...]
    when: tuple[Condition, ...]
    then: Derivation
    unless: tuple[str, ...] = ()
    generated_from: str | None = None  # e.g. "neuroanatomy.yaml" for ROOT-* rules


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    kind: str
    url: str | None


@dataclass(frozen=True)
class ConclusionDef:
    name: str
    text: str
    outcome: Coding
    per_root: bool
    rank: int
    red_flag: bool = False  # named among the red flags in the narrative


@dataclass(frozen=True)
class PathwayDef:
    code: str
    display: str
    mitigation: str
    safety_net: str
    sources: tuple[str, ...]
    rank: int
    card: str  # CDS Hooks card indicator, or "none" for no card


@dataclass(frozen=True)
class Guidance:
    id: str
    target: tuple[str, str]  # ("pathway" | "conclusion", name)
    title: str
    text: str
    sources: tuple[str, ...]
    audience: str = "patient"  # patient | clinician: who the text is written for


@dataclass(frozen=True)
class Gap:
    id: str
    when: tuple[str, ...]
    missing: tuple[str, ...]
    text: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class RootMap:
    root: str
    sensory_sites: tuple[str, ...]
    key_muscles: tuple[str, ...]
    motor_findings: tuple[str, ...]
    reflexes: tuple[str, ...]
    disc_levels: tuple[str, ...]


@dataclass(frozen=True)
class Mimic:
    """A peripheral lesion (or an examination pattern) that explains findings on its side; as a
    documented negative (`negatives`), a finding recorded absent that contradicts them there."""

    name: str
    concept: str  # the finding that documents it
    grade: str | None  # the grade that finding must have, if graded
    findings: tuple[str, ...]  # concepts it explains
    sensory_sites: tuple[str, ...]  # sites where it explains the sensory findings
    label: str


@dataclass(frozen=True)
class Neuroanatomy:
    sources: tuple[str, ...]
    sensory_findings: tuple[str, ...]
    roots: tuple[RootMap, ...]
    mimics: tuple[Mimic, ...] = ()
    negatives: tuple[Mimic, ...] = ()  # documented negatives that contradict findings on their side
    polyneuropathy: str = "polyneuropathy"  # evidence that withdraws symmetric root signs


@dataclass(frozen=True)
class OrderSet:
    """Draft orders of one kind (CDS Hooks order-sign), by the codes of the resource's code."""

    name: str
    display: str
    resource: str  # ServiceRequest | MedicationRequest
    codes: tuple[Coding, ...]


@dataclass(frozen=True)
class OrderAdvice:
    """What to say when one of `orders` is ordered and one of `conclusions` was reached."""

    id: str
    orders: tuple[str, ...]
    conclusions: tuple[str, ...]
    early_only: bool  # only while no finding behind the conclusion is `persisting`
    indicator: str  # CDS Hooks card indicator
    summary: str  # may hold {weeks}: radicular_persisting_min_days in weeks
    text: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Knowledge:
    id: str
    version: str
    title: str
    status: str
    directory: str
    systems: Mapping[str, str]
    sources: Mapping[str, Source]
    concepts: Mapping[str, Concept]
    parameters: Mapping[str, float]
    neuroanatomy: Neuroanatomy
    rules: tuple[Rule, ...]  # explicit rules, then those generated from neuroanatomy
    conclusions: Mapping[str, ConclusionDef]
    pathways: Mapping[str, PathwayDef]
    guidance: tuple[Guidance, ...]
    gaps: tuple[Gap, ...]
    lexicon: Lexicon
    units: Units
    code_index: Mapping[tuple[str, str], tuple[Concept, ...]]
    descendant_index: Mapping[tuple[str, str], tuple[Concept, ...]] = dataclasses.field(default_factory=dict)
    orders: Mapping[str, OrderSet] = dataclasses.field(default_factory=dict)  # orders.yaml
    order_advice: tuple[OrderAdvice, ...] = ()
    order_pathway_card: frozenset[str] = frozenset()  # pathways whose card any order gets

    def concepts_for(self, system: str, code: str) -> tuple[Concept, ...]:
        """Every concept whose value set holds this coding (a code may sit in several), or an
        ICD-10-CM category above it (`descendants`): the ICD-10-CM hierarchy is its code prefixes."""
        exact = self.code_index.get((system, code), ())
        if not self.descendant_index or system != ICD10CM:
            return exact
        above = [
            c for prefix in _icd_ancestors(code) for c in self.descendant_index.get((system, prefix), ())
        ]
        if not above:
            return exact
        return tuple(dict.fromkeys(exact + tuple(above)))

    def coding_for(self, system: str, code: str) -> Coding | None:
        for concept in self.concepts_for(system, code):
            for coding in concept.codes:
                if coding.system == system and coding.code == code:
                    return coding
        return None

    def parameter(self, name: str) -> float:
        return self.parameters[name]


def index_codes(
    concepts: Mapping[str, Concept], descendants: bool = False
) -> dict[tuple[str, str], tuple[Concept, ...]]:
    """(system, code) -> concepts; with `descendants`, only the categories that cover the codes
    below them."""
    index: dict[tuple[str, str], list[Concept]] = {}
    for concept in concepts.values():
        for coding in concept.codes:
            if coding.descendants or not descendants:
                index.setdefault((coding.system, coding.code), []).append(concept)
    return {key: tuple(value) for key, value in index.items()}


ICD10CM_MAX_LENGTH = 8  # the longest ICD-10-CM code: a category, a dot and four characters (S32.009A)


def _icd_ancestors(code: str) -> tuple[str, ...]:
    """The ICD-10-CM codes above this one: Z85.528 -> Z85.52, Z85.5, Z85. A longer string is no
    ICD-10-CM code and has none (its prefixes would cost the square of its length)."""
    if len(code) > ICD10CM_MAX_LENGTH:
        return ()
    return tuple(dict.fromkeys(code[:end].rstrip(".") for end in range(len(code) - 1, 2, -1)))
