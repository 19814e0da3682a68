"""The marshmallow schemas of every knowledge file: shape, types and closed vocabularies."""

from __future__ import annotations

from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from service.knowledge.vocabulary import (
    COMPARISONS,
    MEASURES,
    QUALIFIER_ROLES,
    SIDES,
    TAGS,
)

NAME = validate.Regexp(r"^[A-Za-z0-9_.\-]+$", error="must be letters, digits, _ . or -")


# ---------------------------------------------------------------- marshmallow schemas


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class ManifestSchema(StrictSchema):
    id = fields.String(required=True, validate=NAME)
    version = fields.String(
        required=True, validate=validate.Regexp(r"^\d+\.\d+\.\d+$", error="must be semver X.Y.Z")
    )
    title = fields.String(required=True)
    status = fields.String(required=True)
    icd10cm_edition = fields.String(required=True)
    code_systems = fields.Dict(keys=fields.String(validate=NAME), values=fields.Url(), required=True)


class SourceSchema(StrictSchema):
    title = fields.String(required=True)
    kind = fields.String(
        required=True, validate=validate.OneOf(["terminology", "guideline", "anatomy", "heuristic"])
    )
    url = fields.Url(load_default=None)


class SourcesSchema(StrictSchema):
    sources = fields.Dict(
        keys=fields.String(validate=NAME), values=fields.Nested(SourceSchema), required=True
    )


class CodingSchema(StrictSchema):
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


class ConceptSchema(StrictSchema):
    display = fields.String(required=True)
    codes = fields.List(fields.Nested(CodingSchema), required=True, validate=validate.Length(min=1))
    role = fields.String(validate=validate.OneOf(QUALIFIER_ROLES))
    measure = fields.String(validate=validate.OneOf(MEASURES))
    threshold = fields.String()
    unit = fields.String()
    default_unit = fields.String()
    comparison = fields.String(validate=validate.OneOf(COMPARISONS))


class ValueSetFileSchema(StrictSchema):
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


class TextValuesSchema(StrictSchema):
    absent = fields.List(fields.String(validate=validate.Length(min=1)), required=True)
    present = fields.List(fields.String(validate=validate.Length(min=1)), required=True)
    sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


class UnitSchema(StrictSchema):
    kind = fields.String(required=True, validate=NAME)
    pint = fields.String(required=True)
    also = fields.List(fields.String(validate=validate.Length(min=1)), load_default=list)


class ValuesSchema(StrictSchema):
    text = fields.Nested(TextValuesSchema, required=True)
    units = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1)), values=fields.Nested(UnitSchema), required=True
    )
    unit_sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


class ParameterSchema(StrictSchema):
    value = fields.Float(required=True)
    meaning = fields.String(required=True)
    sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


class RootSchema(StrictSchema):
    sensory_sites = fields.List(fields.String(), load_default=list)
    key_muscles = fields.List(fields.String(), load_default=list)
    motor_findings = fields.List(fields.String(), load_default=list)
    reflexes = fields.List(fields.String(), load_default=list)
    disc_levels = fields.List(fields.String(), load_default=list)


class MimicSchema(StrictSchema):
    concept = fields.String(required=True)
    grade = fields.String(load_default=None)
    findings = fields.List(fields.String(), load_default=list)
    sensory_sites = fields.List(fields.String(), load_default=list)
    label = fields.String(required=True)


class NeuroanatomySchema(StrictSchema):
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


class ConclusionSchema(StrictSchema):
    text = fields.String(required=True)
    outcome = fields.Nested(CodingSchema(only=("system", "code", "display")), required=True)
    per_root = fields.Boolean(load_default=False)
    red_flag = fields.Boolean(load_default=False)


class PathwaySchema(StrictSchema):
    card = fields.String(required=True, validate=validate.OneOf(["critical", "warning", "info", "none"]))
    display = fields.String(required=True)
    mitigation = fields.String(required=True)
    safety_net = fields.String(required=True)
    sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


class GuidanceSchema(StrictSchema):
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


class GapSchema(StrictSchema):
    id = fields.String(required=True, validate=NAME)
    when = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    missing = fields.List(fields.String(), load_default=list)  # none: a note whenever `when` holds
    text = fields.String(required=True)
    sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


# ---------------------------------------------------------------- orders.yaml (order-sign)


class OrderSetSchema(StrictSchema):
    display = fields.String(required=True)
    resource = fields.String(required=True, validate=validate.OneOf(["ServiceRequest", "MedicationRequest"]))
    concepts = fields.List(fields.String(), load_default=list)
    codes = fields.List(fields.Nested(CodingSchema), load_default=list)


class OrderAdviceSchema(StrictSchema):
    id = fields.String(required=True, validate=NAME)
    orders = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    conclusions = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    early_only = fields.Boolean(load_default=False)
    indicator = fields.String(required=True, validate=validate.OneOf(["critical", "warning", "info"]))
    summary = fields.String(required=True)
    text = fields.String(required=True)
    sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


class OrdersFileSchema(StrictSchema):
    orders = fields.Dict(
        keys=fields.String(validate=NAME), values=fields.Nested(OrderSetSchema), required=True
    )
    advice = fields.List(fields.Nested(OrderAdviceSchema), required=True)
    pathway_card = fields.List(fields.String(), required=True)
