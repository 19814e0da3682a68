"""Load the knowledge base from YAML, validate it with marshmallow, freeze it.

Everything a clinician reviews lives in `knowledge/`; this module only checks its shape and its
cross-references (every source, concept, rule field and pathway named exists) so that a wrong
file stops startup with a message naming the file and the field, never a request.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pint
import yaml
from marshmallow import (
    INCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from service.errors import KnowledgeError, first_error

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SIDES = ("left", "right", "bilateral", "unspecified")
TAGS = ("A", "B", "L")  # verified, corroborated, local (site-added); [U] codes are refused
RISKS = ("negligible", "low", "moderate", "high", "certain")
MEASURES = ("reflex", "strength", "quantity", "coded_result")
QUALIFIER_ROLES = ("site", "laterality", "disc_level", "absent_value")
INPUT_FACTS = ("finding", "treatment", "patient")
DERIVED_FACTS = ("evidence", "conclusion", "pathway")
# The fields each kind of fact carries, so that a rule naming any other field is refused.
COMPARISONS = (">=", ">")
FACT_FIELDS: Mapping[str, tuple[str, ...]] = {
    "finding": ("concept", "site", "side", "status", "recent", "new", "current", "persisting",
                "level", "grade", "progressive", "symmetric", "explained", "result"),
    "treatment": ("concept", "status", "long_term", "recent"),
    "patient": ("older",),
    "evidence": ("name", "root", "side", "kind", "recent"),
    "conclusion": ("name", "root", "side", "kind", "recent"),
    "pathway": ("name",),
}
NAME = validate.Regexp(r"^[A-Za-z0-9_.\-]+$", error="must be letters, digits, _ . or -")


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
    comparison: str = ">="  # value `comparison` threshold -> grade high


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
    """A peripheral lesion (or an examination pattern) that explains findings on its side."""

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
    descendant_index: Mapping[tuple[str, str], tuple[Concept, ...]] = dataclasses.field(
        default_factory=dict)
    orders: Mapping[str, OrderSet] = dataclasses.field(default_factory=dict)  # orders.yaml
    order_advice: tuple[OrderAdvice, ...] = ()
    order_pathway_card: frozenset[str] = frozenset()  # pathways whose card any order gets

    def concepts_for(self, system: str, code: str) -> tuple[Concept, ...]:
        """Every concept whose value set holds this coding (a code may sit in several), or an
        ICD-10-CM category above it (`descendants`): the ICD-10-CM hierarchy is its code prefixes."""
        exact = self.code_index.get((system, code), ())
        if not self.descendant_index or system != ICD10CM:
            return exact
        above = [c for prefix in _icd_ancestors(code)
                 for c in self.descendant_index.get((system, prefix), ())]
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


def _index_codes(concepts: Mapping[str, Concept], descendants: bool = False
                 ) -> dict[tuple[str, str], tuple[Concept, ...]]:
    """(system, code) -> concepts; with `descendants`, only the categories that cover the codes
    below them."""
    index: dict[tuple[str, str], list[Concept]] = {}
    for concept in concepts.values():
        for coding in concept.codes:
            if coding.descendants or not descendants:
                index.setdefault((coding.system, coding.code), []).append(concept)
    return {key: tuple(value) for key, value in index.items()}


def _icd_ancestors(code: str) -> tuple[str, ...]:
    """The ICD-10-CM codes above this one: Z85.528 -> Z85.52, Z85.5, Z85."""
    return tuple(dict.fromkeys(code[:end].rstrip(".") for end in range(len(code) - 1, 2, -1)))


# ---------------------------------------------------------------- marshmallow schemas


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class ManifestSchema(_Strict):
    id = fields.String(required=True, validate=NAME)
    version = fields.String(
        required=True, validate=validate.Regexp(r"^\d+\.\d+\.\d+$", error="must be semver X.Y.Z")
    )
    title = fields.String(required=True)
    status = fields.String(required=True)
    icd10cm_edition = fields.String(required=True)
    code_systems = fields.Dict(keys=fields.String(validate=NAME), values=fields.Url(), required=True)


class SourceSchema(_Strict):
    title = fields.String(required=True)
    kind = fields.String(
        required=True, validate=validate.OneOf(["terminology", "guideline", "anatomy", "heuristic"])
    )
    url = fields.Url(load_default=None)


class SourcesSchema(_Strict):
    sources = fields.Dict(keys=fields.String(validate=NAME), values=fields.Nested(SourceSchema),
                          required=True)


class CodingSchema(_Strict):
    system = fields.String(required=True)
    code = fields.String(required=True, validate=validate.Length(min=1))
    display = fields.String(required=True)
    tag = fields.String(
        required=True,
        validate=validate.OneOf(
            TAGS, error="must be A, B or L; unverified [U] codes must be looked up before use"
        ),
    )
    ref = fields.String(required=True)
    side = fields.String(validate=validate.OneOf(SIDES))
    descendants = fields.Boolean(load_default=False)


class ConceptSchema(_Strict):
    display = fields.String(required=True)
    codes = fields.List(fields.Nested(CodingSchema), required=True,
                        validate=validate.Length(min=1))
    role = fields.String(validate=validate.OneOf(QUALIFIER_ROLES))
    measure = fields.String(validate=validate.OneOf(MEASURES))
    threshold = fields.String()
    unit = fields.String()
    default_unit = fields.String()
    comparison = fields.String(validate=validate.OneOf(COMPARISONS))


class ValueSetFileSchema(_Strict):
    kind = fields.String(required=True, validate=validate.OneOf(["clinical", "qualifier"]))
    concepts = fields.Dict(keys=fields.String(validate=NAME), values=fields.Nested(ConceptSchema),
                           required=True)

    @validates_schema
    def _roles(self, data: dict[str, Any], **_: Any) -> None:
        for name, concept in data["concepts"].items():
            if (data["kind"] == "qualifier") != ("role" in concept):
                raise ValidationError("qualifier concepts need a role; clinical ones none",
                                      f"concepts.{name}.role")


class TextValuesSchema(_Strict):
    absent = fields.List(fields.String(validate=validate.Length(min=1)), required=True)
    present = fields.List(fields.String(validate=validate.Length(min=1)), required=True)
    sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


class UnitSchema(_Strict):
    kind = fields.String(required=True, validate=NAME)
    pint = fields.String(required=True)
    also = fields.List(fields.String(validate=validate.Length(min=1)), load_default=list)


class ValuesSchema(_Strict):
    text = fields.Nested(TextValuesSchema, required=True)
    units = fields.Dict(keys=fields.String(validate=validate.Length(min=1)),
                        values=fields.Nested(UnitSchema), required=True)
    unit_sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


class ParameterSchema(_Strict):
    value = fields.Float(required=True)
    meaning = fields.String(required=True)
    sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


class RootSchema(_Strict):
    sensory_sites = fields.List(fields.String(), load_default=list)
    key_muscles = fields.List(fields.String(), load_default=list)
    motor_findings = fields.List(fields.String(), load_default=list)
    reflexes = fields.List(fields.String(), load_default=list)
    disc_levels = fields.List(fields.String(), load_default=list)


class MimicSchema(_Strict):
    concept = fields.String(required=True)
    grade = fields.String(load_default=None)
    findings = fields.List(fields.String(), load_default=list)
    sensory_sites = fields.List(fields.String(), load_default=list)
    label = fields.String(required=True)


class NeuroanatomySchema(_Strict):
    sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    sensory_findings = fields.List(fields.String(), required=True)
    roots = fields.Dict(keys=fields.String(validate=validate.OneOf(["L4", "L5", "S1"])),
                        values=fields.Nested(RootSchema), required=True)
    mimics = fields.Dict(keys=fields.String(validate=NAME), values=fields.Nested(MimicSchema),
                         load_default=dict)
    polyneuropathy = fields.String(load_default="polyneuropathy", validate=NAME)


class _Scalar(fields.Field):  # type: ignore[type-arg]
    """A rule value: a string or a boolean (never a number, to keep matching exact)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool | str):
            return value
        raise ValidationError("must be a word or true/false")


class _ScalarOrList(fields.Field):  # type: ignore[type-arg]
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        values = value if isinstance(value, list) else [value]
        if not values:
            raise ValidationError("must not be empty")
        return tuple(_Scalar().deserialize(v) for v in values)


class ConditionSchema(Schema):
    class Meta:
        unknown = INCLUDE  # the other keys are fact fields, checked against FACT_FIELDS below

    fact = fields.String(required=True, validate=validate.OneOf(INPUT_FACTS + DERIVED_FACTS))
    same = fields.Dict(keys=fields.String(), values=fields.Integer(validate=validate.Range(0)),
                       load_default=dict)

    @validates_schema(pass_original=True)
    def _fields(self, data: dict[str, Any], original: dict[str, Any], **_: Any) -> None:
        allowed = FACT_FIELDS[data["fact"]]
        for key in set(original) - {"fact", "same"}:
            if key not in allowed:
                raise ValidationError(f"a {data['fact']} fact has no field {key!r}; "
                                      f"it has {', '.join(allowed)}", key)
        for key in data.get("same", {}):
            if key not in allowed:
                raise ValidationError(f"a {data['fact']} fact has no field {key!r}", "same")

    @post_load(pass_original=True)
    def _match(self, data: dict[str, Any], original: dict[str, Any], **_: Any) -> dict[str, Any]:
        """The fact fields (every key but `fact` and `same`) -> field: accepted values."""
        match = {}
        for key, value in original.items():
            if key not in ("fact", "same"):
                try:
                    match[key] = _ScalarOrList().deserialize(value)
                except ValidationError as exc:
                    raise ValidationError(exc.messages, key) from None
        return {"fact": data["fact"], "same": data["same"], "match": match}


class ThenSchema(_Strict):
    evidence = fields.String(validate=NAME)
    conclusion = fields.String(validate=NAME)
    pathway = fields.String(validate=NAME)
    risk = fields.String(validate=validate.OneOf(RISKS))
    set = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    copy = fields.Dict(keys=fields.String(), values=fields.Integer(validate=validate.Range(0)),
                       load_default=dict)

    @validates_schema
    def _one_target(self, data: dict[str, Any], **_: Any) -> None:
        targets = [k for k in DERIVED_FACTS if k in data]
        if len(targets) != 1:
            raise ValidationError("name exactly one of evidence, conclusion, pathway")
        if ("risk" in data) != (targets[0] == "conclusion"):
            raise ValidationError("a conclusion needs a risk; evidence and pathways have none",
                                  "risk")


class RuleSchema(_Strict):
    id = fields.String(required=True, validate=NAME)
    title = fields.String(required=True)
    sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    when = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1, max=4))
    then = fields.Nested(ThenSchema, required=True)
    unless = fields.List(fields.String(), load_default=list)


class ConclusionSchema(_Strict):
    text = fields.String(required=True)
    outcome = fields.Nested(CodingSchema(only=("system", "code", "display")), required=True)
    per_root = fields.Boolean(load_default=False)
    red_flag = fields.Boolean(load_default=False)


class PathwaySchema(_Strict):
    card = fields.String(required=True, validate=validate.OneOf(["critical", "warning", "info", "none"]))
    display = fields.String(required=True)
    mitigation = fields.String(required=True)
    safety_net = fields.String(required=True)
    sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


class GuidanceSchema(_Strict):
    id = fields.String(required=True, validate=NAME)
    target = fields.Dict(data_key="for", keys=fields.String(
        validate=validate.OneOf(["pathway", "conclusion"])), values=fields.String(),
        required=True, validate=validate.Length(equal=1))
    title = fields.String(required=True)
    text = fields.String(required=True)
    sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    audience = fields.String(load_default="patient",
                             validate=validate.OneOf(["patient", "clinician"]))


class GapSchema(_Strict):
    id = fields.String(required=True, validate=NAME)
    when = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    missing = fields.List(fields.String(), load_default=list)  # none: a note whenever `when` holds
    text = fields.String(required=True)
    sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


# ---------------------------------------------------------------- loading


def default_directory() -> Path:
    """The knowledge base shipped with the package (the repository's `knowledge/`)."""
    return Path(str(importlib.resources.files("spinefoot_knowledge")))


def load_knowledge(directory: Path | str | None = None) -> Knowledge:
    """Read, validate and cross-check every knowledge file; raise KnowledgeError on the first fault."""
    root = Path(directory) if directory is not None else default_directory()
    if not root.is_dir():
        raise KnowledgeError(str(root), "-", "knowledge directory not found")
    manifest = _load(root, "manifest.yaml", ManifestSchema())
    sources = _load(root, "sources.yaml", SourcesSchema())["sources"]
    source_ids = set(sources)
    systems: dict[str, str] = manifest["code_systems"]

    concepts = _load_concepts(root, systems, source_ids)
    parameters = _load_parameters(root, source_ids)
    lexicon, units = _load_values(root, source_ids)
    for concept in concepts.values():
        if concept.threshold is not None and concept.threshold not in parameters:
            raise KnowledgeError("valuesets/", f"concepts.{concept.name}.threshold",
                        f"unknown parameter {concept.threshold!r}")
        for field in ("unit", "default_unit"):
            if getattr(concept, field) not in (None, *units.by_name):
                raise KnowledgeError("valuesets/", f"concepts.{concept.name}.{field}",
                            f"unknown unit {getattr(concept, field)!r}; declare it in values.yaml")
    neuro = _load_neuroanatomy(root, concepts, source_ids)
    rules = _load_rules(root, source_ids, concepts) + generate_root_rules(neuro)
    conclusions = _load_conclusions(root, systems)
    pathways = _load_pathways(root, source_ids)
    guidance = _load_guidance(root, source_ids, conclusions, pathways)
    kb = Knowledge(
        id=manifest["id"], version=manifest["version"], title=manifest["title"],
        status=manifest["status"], directory=str(root), systems=systems,
        sources={k: Source(k, v["title"], v["kind"], v["url"]) for k, v in sources.items()},
        concepts=concepts, parameters=parameters, neuroanatomy=neuro, rules=rules,
        conclusions=conclusions, pathways=pathways, guidance=guidance,
        gaps=(), lexicon=lexicon, units=units, code_index=_index_codes(concepts),
        descendant_index=_index_codes(concepts, descendants=True),
    )
    _check_rules(kb)
    gaps = _load_gaps(root, source_ids, _derivable_names(kb) | set(concepts))
    return dataclasses.replace(kb, gaps=gaps, **_load_orders(root, systems, source_ids,
                                                             conclusions, pathways, concepts))


def _read_yaml(root: Path, name: str) -> Any:
    path = root / name
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except FileNotFoundError:
        raise KnowledgeError(name, "-", "file is missing") from None
    except yaml.YAMLError as exc:
        raise KnowledgeError(name, "-", f"not valid YAML: {exc}") from None


def _load(root: Path, name: str, schema: Schema, many: bool = False) -> Any:
    return _validate(schema, _read_yaml(root, name), name, many=many)


def _validate(schema: Schema, data: Any, file: str, where: str = "", many: bool = False) -> Any:
    """`schema.load`, with its first error raised as a KnowledgeError at `where.field`."""
    try:
        return schema.load(data, many=many)
    except ValidationError as exc:
        field, message = first_error(exc.messages)
        raise KnowledgeError(file, f"{where}.{field}" if where else field, message) from None


def _load_concepts(root: Path, systems: Mapping[str, str], source_ids: set[str]
                   ) -> dict[str, Concept]:
    """Merge every valueset file; a concept named in two files gains both files' codes."""
    files = sorted((root / "valuesets").glob("*.yaml"))
    if not files:
        raise KnowledgeError("valuesets/", "-", "no value-set files")
    merged: dict[str, Concept] = {}
    for path in files:
        name = f"valuesets/{path.name}"
        data = _load(root, name, ValueSetFileSchema())
        for concept_name, raw in data["concepts"].items():
            codes = _codings(name, f"concepts.{concept_name}", raw["codes"], systems, source_ids)
            previous = merged.get(concept_name)
            if previous is not None and previous.kind != data["kind"]:
                raise KnowledgeError(name, f"concepts.{concept_name}",
                            f"already defined as a {previous.kind} concept")
            merged[concept_name] = Concept(
                name=concept_name,
                display=previous.display if previous else raw["display"],
                kind=data["kind"],
                codes=(previous.codes if previous else ()) + tuple(codes),
                role=raw.get("role", previous.role if previous else None),
                measure=raw.get("measure", previous.measure if previous else None),
                threshold=raw.get("threshold", previous.threshold if previous else None),
                unit=raw.get("unit", previous.unit if previous else None),
                default_unit=raw.get("default_unit", previous.default_unit if previous else None),
                comparison=raw.get("comparison", previous.comparison if previous else ">="),
            )
    return merged


def _codings(file: str, where: str, raw_codes: list[dict[str, Any]], systems: Mapping[str, str],
             source_ids: set[str]) -> list[Coding]:
    """A value set's codes, each with a known system and source."""
    codes = []
    for i, code in enumerate(raw_codes):
        at = f"{where}.codes.{i}"
        if code["system"] not in systems:
            raise KnowledgeError(file, f"{at}.system",
                                 f"unknown system {code['system']!r}; add it to manifest.yaml")
        if code["ref"] not in source_ids:
            raise KnowledgeError(file, f"{at}.ref", f"unknown source {code['ref']!r}")
        if code["descendants"] and systems[code["system"]] != ICD10CM:
            raise KnowledgeError(file, f"{at}.descendants",
                                 "only ICD-10-CM codes (whose hierarchy is their prefixes) may "
                                 "include their descendants")
        codes.append(Coding(systems[code["system"]], code["code"], code["display"], code["tag"],
                            code["ref"], code.get("side"), code["descendants"]))
    return codes


def _load_values(root: Path, source_ids: set[str]) -> tuple[Lexicon, Units]:
    """The text lexicon, and the UCUM units with their conversion to their kind's base unit,
    worked out once here by the units library (pint) so that a request only multiplies."""
    file = "values.yaml"
    data = _load(root, file, ValuesSchema())
    _check_sources(file, "text.sources", data["text"]["sources"], source_ids)
    _check_sources(file, "unit_sources", data["unit_sources"], source_ids)
    lexicon = Lexicon(frozenset(normalise_text(t) for t in data["text"]["absent"]),
                      frozenset(normalise_text(t) for t in data["text"]["present"]))
    if lexicon.absent & lexicon.present:
        raise KnowledgeError(file, "text", f"both absent and present: "
                                           f"{sorted(lexicon.absent & lexicon.present)}")
    registry: pint.UnitRegistry[float] = pint.UnitRegistry()
    bases: dict[str, str] = {}
    by_name: dict[str, Unit] = {}
    for code, raw in data["units"].items():
        base = bases.setdefault(raw["kind"], raw["pint"])
        try:
            zero, one = (float(registry.Quantity(x, raw["pint"]).to(base).magnitude) for x in (0, 1))
        except (pint.errors.PintError, AttributeError, ValueError) as exc:
            raise KnowledgeError(file, f"units.{code}.pint",
                                 f"not a unit of the same kind as {base!r}: {exc}") from None
        unit = Unit(code, raw["kind"], one - zero, zero)
        for name in (code, *raw["also"]):
            if by_name.setdefault(name, unit) is not unit:
                raise KnowledgeError(file, f"units.{code}.also", f"{name!r} names two units")
    return lexicon, Units(by_name)


def normalise_text(text: str) -> str:
    """How free text is compared with the lexicon: case, spacing and a final full stop aside."""
    return " ".join(text.lower().split()).rstrip(".!").strip()


def _load_parameters(root: Path, source_ids: set[str]) -> dict[str, float]:
    data = _read_yaml(root, "parameters.yaml")
    if not isinstance(data, dict):
        raise KnowledgeError("parameters.yaml", "-", "must map parameter names to definitions")
    parameters: dict[str, float] = {}
    for name, raw in data.items():
        loaded = _validate(ParameterSchema(), raw, "parameters.yaml", name)
        _check_sources("parameters.yaml", f"{name}.sources", loaded["sources"], source_ids)
        parameters[name] = loaded["value"]
    return parameters


def _load_neuroanatomy(root: Path, concepts: Mapping[str, Concept], source_ids: set[str]
                       ) -> Neuroanatomy:
    file = "neuroanatomy.yaml"
    data = _load(root, file, NeuroanatomySchema())
    _check_sources(file, "sources", data["sources"], source_ids)
    expected = {"sensory_sites": "site", "disc_levels": "disc_level"}

    def check(field: str, names: list[str]) -> tuple[str, ...]:
        for name in names:
            concept = concepts.get(name)
            if concept is None:
                raise KnowledgeError(file, field, f"unknown concept {name!r}")
            role = expected.get(field.rsplit(".", 1)[-1])
            if role and concept.role != role:
                raise KnowledgeError(file, field, f"{name!r} is not a {role} concept")
        return tuple(names)

    roots = tuple(
        RootMap(root_name, *(check(f"roots.{root_name}.{key}", raw[key]) for key in (
            "sensory_sites", "key_muscles", "motor_findings", "reflexes", "disc_levels")))
        for root_name, raw in sorted(data["roots"].items())
    )
    mimics = tuple(
        Mimic(name, check(f"mimics.{name}.concept", [raw["concept"]])[0], raw["grade"],
              check(f"mimics.{name}.findings", raw["findings"]),
              check(f"mimics.{name}.sensory_sites", raw["sensory_sites"]), raw["label"])
        for name, raw in sorted(data["mimics"].items()))
    return Neuroanatomy(tuple(data["sources"]),
                        check("sensory_findings", data["sensory_findings"]), roots, mimics,
                        data["polyneuropathy"])


def _load_rules(root: Path, source_ids: set[str], concepts: Mapping[str, Concept]
                ) -> tuple[Rule, ...]:
    file = "rules.yaml"
    raw_rules = _load(root, file, RuleSchema(), many=True)
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        where = f"[{i}] {raw['id']}"
        if raw["id"] in seen:
            raise KnowledgeError(file, f"{where}.id", "duplicate rule id")
        seen.add(raw["id"])
        _check_sources(file, f"{where}.sources", raw["sources"], source_ids)
        when = []
        for j, item in enumerate(raw["when"]):
            cond = _validate(ConditionSchema(), item, file, f"{where}.when.{j}")
            match = cond["match"]
            for index in cond["same"].values():
                if index >= j:
                    raise KnowledgeError(file, f"{where}.when.{j}.same",
                                "may only join to an earlier item")
            for value in match.get("concept", ()):
                if value not in concepts:
                    raise KnowledgeError(file, f"{where}.when.{j}.concept", f"unknown concept {value!r}")
            when.append(Condition(cond["fact"], tuple(sorted(match.items())),
                                  tuple(sorted(cond["same"].items()))))
        then = raw["then"]
        target = next(k for k in DERIVED_FACTS if k in then)
        for field, index in then["copy"].items():
            if index >= len(when):
                raise KnowledgeError(file, f"{where}.then.copy.{field}", "no such when item")
            if field not in FACT_FIELDS[target]:
                raise KnowledgeError(file, f"{where}.then.copy.{field}",
                            f"a {target} fact has no field {field!r}")
        rules.append(Rule(
            id=raw["id"], title=raw["title"], sources=tuple(raw["sources"]), when=tuple(when),
            then=Derivation(target, then[target], then.get("risk"),
                            tuple(sorted(then["set"].items())), tuple(sorted(then["copy"].items()))),
            unless=tuple(raw["unless"]),
        ))
    return tuple(rules)


def generate_root_rules(neuro: Neuroanatomy) -> tuple[Rule, ...]:
    """Turn the dermatome/myotome/reflex map into root-evidence rules (one per root and kind).
    A finding a peripheral lesion explains is no root sign; a symmetric sensory or reflex finding
    has a rule of its own, withdrawn in a patient with polyneuropathy (length-dependent loss)."""
    rules: list[Rule] = []
    def rule(root: RootMap, kind: str, suffix: str, *match: tuple[str, tuple[Any, ...]],
             unless: tuple[str, ...] = ()) -> Rule:
        return Rule(
            id=f"ROOT-{root.root}-{suffix}",
            title=f"{kind.capitalize()} finding in the {root.root} distribution"
                  + (" on both sides (not with polyneuropathy)" if unless else ""),
            sources=neuro.sources,
            when=(Condition("finding", tuple(sorted(match))),),
            then=Derivation("evidence", "root_evidence", None,
                            (("kind", kind), ("root", root.root)), (("side", 0),)),
            unless=unless,
            generated_from="neuroanatomy.yaml",
        )

    def per_symmetry(root: RootMap, kind: str, suffix: str,
                     *match: tuple[str, tuple[Any, ...]]) -> list[Rule]:
        own = (*match, ("explained", (False,)))
        return [rule(root, kind, suffix, *own, ("symmetric", (False,))),
                rule(root, kind, f"{suffix}-SYMMETRIC", *own, ("symmetric", (True,)),
                     unless=(neuro.polyneuropathy,))]

    for root in neuro.roots:
        if root.sensory_sites:
            rules += per_symmetry(root, "sensory", "SENSORY", ("concept", neuro.sensory_findings),
                                  ("site", root.sensory_sites), ("status", ("active",)))
        if root.key_muscles:
            rules.append(rule(root, "motor", "MOTOR", ("concept", root.key_muscles),
                              ("grade", ("weak", "severe")), ("explained", (False,))))
        if root.motor_findings:
            rules.append(rule(root, "motor", "MOTOR-FINDING", ("concept", root.motor_findings),
                              ("status", ("active",)), ("explained", (False,))))
        if root.reflexes:
            rules += per_symmetry(root, "reflex", "REFLEX", ("concept", root.reflexes),
                                  ("grade", ("reduced",)))
        if root.disc_levels:
            rules.append(rule(root, "imaging", "IMAGING", ("concept", ("disc_herniation",)),
                              ("level", root.disc_levels), ("status", ("active", "history"))))
    return tuple(rules)


def _load_conclusions(root: Path, systems: Mapping[str, str]) -> dict[str, ConclusionDef]:
    file = "conclusions.yaml"
    data = _read_yaml(root, file)
    if not isinstance(data, dict):
        raise KnowledgeError(file, "-", "must map conclusion names to definitions")
    result = {}
    for rank, (name, raw) in enumerate(data.items()):
        loaded = _validate(ConclusionSchema(), raw, file, name)
        outcome = loaded["outcome"]
        if outcome["system"] not in systems:
            raise KnowledgeError(file, f"{name}.outcome.system", f"unknown system {outcome['system']!r}")
        result[name] = ConclusionDef(
            name, loaded["text"],
            Coding(systems[outcome["system"]], outcome["code"], outcome["display"], "A", "contract"),
            loaded["per_root"], rank, loaded["red_flag"])
    return result


def _load_pathways(root: Path, source_ids: set[str]) -> dict[str, PathwayDef]:
    file = "pathways.yaml"
    data = _read_yaml(root, file)
    if not isinstance(data, dict) or "insufficient-information" not in data:
        raise KnowledgeError(file, "-", "must define the pathways, including insufficient-information")
    result = {}
    for rank, (code, raw) in enumerate(data.items()):
        loaded = _validate(PathwaySchema(), raw, file, code)
        _check_sources(file, f"{code}.sources", loaded["sources"], source_ids)
        result[code] = PathwayDef(code, loaded["display"], " ".join(loaded["mitigation"].split()),
                                  " ".join(loaded["safety_net"].split()),
                                  tuple(loaded["sources"]), rank, loaded["card"])
    return result


def _load_guidance(root: Path, source_ids: set[str], conclusions: Mapping[str, ConclusionDef],
                   pathways: Mapping[str, PathwayDef]) -> tuple[Guidance, ...]:
    file = "guidance.yaml"
    items = _load(root, file, GuidanceSchema(), many=True)
    result = []
    for i, raw in enumerate(items):
        (kind, name), = raw["target"].items()
        known = conclusions if kind == "conclusion" else pathways
        if name not in known:
            raise KnowledgeError(file, f"[{i}] {raw['id']}.for.{kind}", f"unknown {kind} {name!r}")
        _check_sources(file, f"[{i}] {raw['id']}.sources", raw["sources"], source_ids)
        result.append(Guidance(raw["id"], (kind, name), raw["title"],
                               " ".join(raw["text"].split()), tuple(raw["sources"]),
                               raw["audience"]))
    return tuple(result)


def _load_gaps(root: Path, source_ids: set[str], names: set[str]) -> tuple[Gap, ...]:
    file = "gaps.yaml"
    items = _load(root, file, GapSchema(), many=True)
    result = []
    for i, raw in enumerate(items):
        for field in ("when", "missing"):
            for name in raw[field]:
                if name not in names:
                    raise KnowledgeError(file, f"[{i}] {raw['id']}.{field}", f"unknown name {name!r}")
        _check_sources(file, f"[{i}] {raw['id']}.sources", raw["sources"], source_ids)
        result.append(Gap(raw["id"], tuple(raw["when"]), tuple(raw["missing"]),
                          " ".join(raw["text"].split()), tuple(raw["sources"])))
    return tuple(result)


def _check_sources(file: str, field: str, names: list[str], source_ids: set[str]) -> None:
    for name in names:
        if name not in source_ids:
            raise KnowledgeError(file, field, f"unknown source {name!r}")


def _derivable_names(kb: Knowledge) -> set[str]:
    return {rule.then.name for rule in kb.rules}


def _check_rules(kb: Knowledge) -> None:
    """Cross-check rules against what can exist: derived names, conclusions, pathways."""
    file = "rules.yaml"
    derivable = _derivable_names(kb)
    withdrawable = {rule.then.name for rule in kb.rules if rule.unless}
    for rule in kb.rules:
        target = rule.then
        if target.fact == "conclusion" and target.name not in kb.conclusions:
            raise KnowledgeError(file, f"{rule.id}.then.conclusion",
                        f"{target.name!r} is not in conclusions.yaml")
        if target.fact == "pathway" and target.name not in kb.pathways:
            raise KnowledgeError(file, f"{rule.id}.then.pathway", f"{target.name!r} is not in pathways.yaml")
        for j, cond in enumerate(rule.when):
            for field, values in cond.match:
                if field == "name":
                    for value in values:
                        if value not in derivable:
                            raise KnowledgeError(file, f"{rule.id}.when.{j}.name",
                                        f"no rule derives {value!r}")
        for name in rule.unless:
            if name not in derivable:
                raise KnowledgeError(file, f"{rule.id}.unless", f"no rule derives {name!r}")
            if name in withdrawable:
                raise KnowledgeError(file, f"{rule.id}.unless",
                            f"{name!r} can itself be withdrawn; `unless` must name stable evidence")


# ---------------------------------------------------------------- orders (CDS Hooks order-sign)


class OrderSetSchema(_Strict):
    display = fields.String(required=True)
    resource = fields.String(required=True,
                             validate=validate.OneOf(["ServiceRequest", "MedicationRequest"]))
    concepts = fields.List(fields.String(), load_default=list)
    codes = fields.List(fields.Nested(CodingSchema), load_default=list)


class OrderAdviceSchema(_Strict):
    id = fields.String(required=True, validate=NAME)
    orders = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    conclusions = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    early_only = fields.Boolean(load_default=False)
    indicator = fields.String(required=True,
                              validate=validate.OneOf(["critical", "warning", "info"]))
    summary = fields.String(required=True)
    text = fields.String(required=True)
    sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


class OrdersFileSchema(_Strict):
    orders = fields.Dict(keys=fields.String(validate=NAME), values=fields.Nested(OrderSetSchema),
                         required=True)
    advice = fields.List(fields.Nested(OrderAdviceSchema), required=True)
    pathway_card = fields.List(fields.String(), required=True)


def _load_orders(root: Path, systems: Mapping[str, str], source_ids: set[str],
                 conclusions: Mapping[str, ConclusionDef], pathways: Mapping[str, PathwayDef],
                 concepts: Mapping[str, Concept]) -> dict[str, Any]:
    """orders.yaml: the order value sets (named apart from the concepts: both are published as
    ValueSets), the advice and the pathways whose own card any order gets, all cross-checked."""
    file = "orders.yaml"
    data = _load(root, file, OrdersFileSchema())
    for name in data["pathway_card"]:
        if name not in pathways:
            raise KnowledgeError(file, "pathway_card", f"unknown pathway {name!r}")
    orders = {}
    for name, raw in data["orders"].items():
        if name in concepts:
            raise KnowledgeError(file, f"orders.{name}", "already the name of a concept")
        for concept in raw["concepts"]:
            if concept not in concepts:
                raise KnowledgeError(file, f"orders.{name}.concepts", f"unknown concept {concept!r}")
        codes = [code for concept in raw["concepts"] for code in concepts[concept].codes]
        codes += _codings(file, f"orders.{name}", raw["codes"], systems, source_ids)
        if not codes:
            raise KnowledgeError(file, f"orders.{name}", "names no concept and no code")
        orders[name] = OrderSet(name, raw["display"], raw["resource"], tuple(codes))
    advice = []
    for i, raw in enumerate(data["advice"]):
        where = f"advice.{i}"
        for field, known in (("orders", orders), ("conclusions", conclusions)):
            for value in raw[field]:
                if value not in known:
                    raise KnowledgeError(file, f"{where}.{field}", f"unknown name {value!r}")
        _check_sources(file, f"{where}.sources", raw["sources"], source_ids)
        advice.append(OrderAdvice(raw["id"], tuple(raw["orders"]), tuple(raw["conclusions"]),
                                  raw["early_only"], raw["indicator"], raw["summary"],
                                  " ".join(raw["text"].split()), tuple(raw["sources"])))
    return {"orders": orders, "order_advice": tuple(advice),
            "order_pathway_card": frozenset(data["pathway_card"])}
