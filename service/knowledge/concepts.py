"""Value sets and values: every concept with its codes, the text lexicon and the UCUM units.

Units are converted to their kind's base unit here, once, by pint, so a request only multiplies.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path

import pint

from service.errors import KnowledgeError
from service.knowledge.codes import read_codings
from service.knowledge.files import check_sources, load_file
from service.knowledge.model import (
    Concept,
    Lexicon,
    Unit,
    Units,
)
from service.knowledge.schemas import (
    ValueSetFileSchema,
    ValuesSchema,
)


def load_concepts(root: Path, systems: Mapping[str, str], source_ids: set[str]) -> dict[str, Concept]:
    """Merge every valueset file; a concept named in two files gains both files' codes."""
    files = sorted((root / "valuesets").glob("*.yaml"))
    if not files:
        raise KnowledgeError("valuesets/", "-", "no value-set files")
    merged: dict[str, Concept] = {}
    for path in files:
        name = f"valuesets/{path.name}"
        data = load_file(root, name, ValueSetFileSchema())
        for concept_name, raw in data["concepts"].items():
            codes = read_codings(name, f"concepts.{concept_name}", raw["codes"], systems, source_ids)
            previous = merged.get(concept_name)
            if previous is not None and previous.kind != data["kind"]:
                raise KnowledgeError(
                    name, f"concepts.{concept_name}", f"already defined as a {previous.kind} concept"
                )
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


def load_values(root: Path, source_ids: set[str]) -> tuple[Lexicon, Units]:
    """The text lexicon, and the UCUM units with their conversion to their kind's base unit,
    worked out once here by the units library (pint) so that a request only multiplies."""
    file = "values.yaml"
    data = load_file(root, file, ValuesSchema())
    check_sources(file, "text.sources", data["text"]["sources"], source_ids)
    check_sources(file, "unit_sources", data["unit_sources"], source_ids)
    lexicon = Lexicon(
        frozenset(normalise_text(t) for t in data["text"]["absent"]),
        frozenset(normalise_text(t) for t in data["text"]["present"]),
    )
    if lexicon.absent & lexicon.present:
        raise KnowledgeError(
            file, "text", f"both absent and present: {sorted(lexicon.absent & lexicon.present)}"
        )
    registry = _unit_registry()
    bases: dict[str, str] = {}
    by_name: dict[str, Unit] = {}
    for code, raw in data["units"].items():
        base = bases.setdefault(raw["kind"], raw["pint"])
        try:
            zero, one = (float(registry.Quantity(x, raw["pint"]).to(base).magnitude) for x in (0, 1))
        except (pint.errors.PintError, AttributeError, ValueError) as exc:
            raise KnowledgeError(
                file, f"units.{code}.pint", f"not a unit of the same kind as {base!r}: {exc}"
            ) from None
        unit = Unit(code, raw["kind"], one - zero, zero)
        for name in (code, *raw["also"]):
            if by_name.setdefault(name, unit) is not unit:
                raise KnowledgeError(file, f"units.{code}.also", f"{name!r} names two units")
    return lexicon, Units(by_name)


@cache
def _unit_registry() -> pint.UnitRegistry[float]:
    """Built once a process: parsing pint's unit definitions costs more than the whole rest of
    a knowledge load, and the registry is only read."""
    return pint.UnitRegistry()


def normalise_text(text: str) -> str:
    """How free text is compared with the lexicon: case, spacing and a final full stop aside."""
    return " ".join(text.lower().split()).rstrip(".!").strip()
