"""The marshmallow schemas of every knowledge file: shape, types and closed vocabularies."""

from __future__ import annotations

from typing import Any

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

from service.knowledge.vocabulary import (
    COMPARISONS,
    DERIVED_FACTS,
    FACT_FIELDS,
    INPUT_FACTS,
    MEASURES,
    QUALIFIER_ROLES,
    RISKS,
    SIDES,
    TAGS,
)

NAME = validate.Regexp(r"^[A-Za-z0-9_.\-]+$", error="must be letters, digits, _ . or -")


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
    sources = fields.Dict(
        keys=fields.String(validate=NAME), values=fields.Nested(SourceSchema), required=True
    )


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
    codes = fields.List(fields.Nested(CodingSchema), required=True, validate=validate.Length(min=1))
    role = fields.String(validate=validate.OneOf(QUALIFIER_ROLES))
    measure = fields.String(validate=validate.OneOf(MEASURES))
    threshold = fields.String()
    unit = fields.String()
    default_unit = fields.String()
    comparison = fields.String(validate=validate.OneOf(COMPARISONS))


class ValueSetFileSchema(_Strict):
    kind = fields.String(required=True, validate=validate.OneOf(["clinical", "qualifier"]))
    concepts = fields.Dict(
        keys=fields.String(validate=NAME), values=fields.Nested(ConceptSchema), required=True
    )

    @validates_schema
    def _roles(self, data: dict[str, Any], **_: Any) -> None:
        for name, concept in data["concepts"].items():
            if (data["kind"] == "qualifier") != ("role" in concept):
                raise ValidationError(
                    "qualifier concepts need a role; clinical ones none", f"concepts.{name}.role"
                )


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
    units = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1)), values=fields.Nested(UnitSchema), required=True
    )
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
    roots = fields.Dict(
        keys=fields.String(validate=validate.OneOf(["L4", "L5", "S1"])),
        values=fields.Nested(RootSchema),
        required=True,
    )
    mimics = fields.Dict(
        keys=fields.String(validate=NAME), values=fields.Nested(MimicSchema), load_default=dict
    )
    negatives = fields.Dict(
        keys=fields.String(validate=NAME), values=fields.Nested(MimicSchema), load_default=dict
    )
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
    same = fields.Dict(
        keys=fields.String(), values=fields.Integer(validate=validate.Range(0)), load_default=dict
    )

    @validates_schema(pass_original=True)
    def _fields(self, data: dict[str, Any], original: dict[str, Any], **_: Any) -> None:
        allowed = FACT_FIELDS[data["fact"]]
        for key in set(original) - {"fact", "same"}:
            if key not in allowed:
                raise ValidationError(
                    f"a {data['fact']} fact has no field {key!r}; it has {', '.join(allowed)}", key
                )
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
    copy = fields.Dict(
        keys=fields.String(), values=fields.Integer(validate=validate.Range(0)), load_default=dict
    )

    @validates_schema
    def _one_target(self, data: dict[str, Any], **_: Any) -> None:
        targets = [k for k in DERIVED_FACTS if k in data]
        if len(targets) != 1:
            raise ValidationError("name exactly one of evidence, conclusion, pathway")
        if ("risk" in data) != (targets[0] == "conclusion"):
            raise ValidationError("a conclusion needs a risk; evidence and pathways have none", "risk")


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
    target = fields.Dict(
        data_key="for",
        keys=fields.String(validate=validate.OneOf(["pathway", "conclusion"])),
        values=fields.String(),
        required=True,
        validate=validate.Length(equal=1),
    )
    title = fields.String(required=True)
    text = fields.String(required=True)
    sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    audience = fields.String(load_default="patient", validate=validate.OneOf(["patient", "clinician"]))


class GapSchema(_Strict):
    id = fields.String(required=True, validate=NAME)
    when = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    missing = fields.List(fields.String(), load_default=list)  # none: a note whenever `when` holds
    text = fields.String(required=True)
    sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


# ---------------------------------------------------------------- orders.yaml (order-sign)


class OrderSetSchema(_Strict):
    display = fields.String(required=True)
    resource = fields.String(required=True, validate=validate.OneOf(["ServiceRequest", "MedicationRequest"]))
    concepts = fields.List(fields.String(), load_default=list)
    codes = fields.List(fields.Nested(CodingSchema), load_default=list)


class OrderAdviceSchema(_Strict):
    id = fields.String(required=True, validate=NAME)
    orders = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    conclusions = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    early_only = fields.Boolean(load_default=False)
    indicator = fields.String(required=True, validate=validate.OneOf(["critical", "warning", "info"]))
    summary = fields.String(required=True)
    text = fields.String(required=True)
    sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


class OrdersFileSchema(_Strict):
    orders = fields.Dict(
        keys=fields.String(validate=NAME), values=fields.Nested(OrderSetSchema), required=True
    )
    advice = fields.List(fields.Nested(OrderAdviceSchema), required=True)
    pathway_card = fields.List(fields.String(), required=True)
