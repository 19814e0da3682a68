"""The marshmallow schemas of rules.yaml: a rule's when items, then and unless."""

from __future__ import annotations

from typing import Any

from marshmallow import (
    INCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from service.knowledge.schemas import NAME, StrictSchema
from service.knowledge.vocabulary import (
    DERIVED_FACTS,
    FACT_FIELDS,
    INPUT_FACTS,
    RISKS,
)


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


class ThenSchema(StrictSchema):
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


class RuleSchema(StrictSchema):
    id = fields.String(required=True, validate=NAME)
    title = fields.String(required=True)
    sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    when = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1, max=4))
    then = fields.Nested(ThenSchema, required=True)
    unless = fields.List(fields.String(), load_default=list)
