"""Load the knowledge base from YAML, validate it with marshmallow, freeze it.

Everything a clinician reviews lives in `knowledge/`; this module only checks its shape and its
cross-references (every source, concept, rule field and pathway named exists) so that a wrong
file stops startup with a message naming the file and the field, never a request.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
from collections.abc import Mapping
from pathlib import Path

from service.errors import KnowledgeError
from service.knowledge.concepts import load_concepts, load_values
from service.knowledge.files import check_known, check_sources, load_file, read_yaml, validate_with
from service.knowledge.model import (
    Coding,
    Concept,
    ConclusionDef,
    Gap,
    Guidance,
    Knowledge,
    Mimic,
    Neuroanatomy,
    PathwayDef,
    RootMap,
    Source,
    index_codes,
)
from service.knowledge.orders import load_orders
from service.knowledge.rules import check_rules, derivable_names, generate_root_rules, load_rules
from service.knowledge.schemas import (
    ConclusionSchema,
    GapSchema,
    GuidanceSchema,
    ManifestSchema,
    NeuroanatomySchema,
    ParameterSchema,
    PathwaySchema,
    SourcesSchema,
)

# ---------------------------------------------------------------- loading


def default_directory() -> Path:
    """The knowledge base shipped with the package (the repository's `knowledge/`)."""
    return Path(str(importlib.resources.files("service.knowledge.base")))


def load_knowledge(directory: Path | str | None = None) -> Knowledge:
    """Read, validate and cross-check every knowledge file; raise KnowledgeError on the first fault."""
    root = Path(directory) if directory is not None else default_directory()
    if not root.is_dir():
        raise KnowledgeError(str(root), "-", "knowledge directory not found")
    manifest = load_file(root, "manifest.yaml", ManifestSchema())
    sources = load_file(root, "sources.yaml", SourcesSchema())["sources"]
    source_ids = set(sources)
    systems: dict[str, str] = manifest["code_systems"]

    concepts = load_concepts(root, systems, source_ids)
    parameters = _load_parameters(root, source_ids)
    lexicon, units = load_values(root, source_ids)
    for concept in concepts.values():
        if concept.threshold is not None and concept.threshold not in parameters:
            raise KnowledgeError(
                "valuesets/", f"concepts.{concept.name}.threshold", f"unknown parameter {concept.threshold!r}"
            )
        for field in ("unit", "default_unit"):
            if getattr(concept, field) not in (None, *units.by_name):
                raise KnowledgeError(
                    "valuesets/",
                    f"concepts.{concept.name}.{field}",
                    f"unknown unit {getattr(concept, field)!r}; declare it in values.yaml",
                )
    neuro = _load_neuroanatomy(root, concepts, source_ids)
    rules = load_rules(root, source_ids, concepts) + generate_root_rules(neuro)
    conclusions = _load_conclusions(root, systems)
    pathways = _load_pathways(root, source_ids)
    guidance = _load_guidance(root, source_ids, conclusions, pathways)
    kb = Knowledge(
        id=manifest["id"],
        version=manifest["version"],
        title=manifest["title"],
        status=manifest["status"],
        directory=str(root),
        systems=systems,
        sources={k: Source(k, v["title"], v["kind"], v["url"]) for k, v in sources.items()},
        concepts=concepts,
        parameters=parameters,
        neuroanatomy=neuro,
        rules=rules,
        conclusions=conclusions,
        pathways=pathways,
        guidance=guidance,
        gaps=(),
        lexicon=lexicon,
        units=units,
        code_index=index_codes(concepts),
        descendant_index=index_codes(concepts, descendants=True),
    )
    check_rules(kb)
    gaps = _load_gaps(root, source_ids, derivable_names(kb) | set(concepts))
    return dataclasses.replace(
        kb, gaps=gaps, **load_orders(root, systems, source_ids, conclusions, pathways, concepts)
    )


def _load_parameters(root: Path, source_ids: set[str]) -> dict[str, float]:
    data = read_yaml(root, "parameters.yaml")
    if not isinstance(data, dict):
        raise KnowledgeError("parameters.yaml", "-", "must map parameter names to definitions")
    parameters: dict[str, float] = {}
    for name, raw in data.items():
        loaded = validate_with(ParameterSchema(), raw, "parameters.yaml", name)
        check_sources("parameters.yaml", f"{name}.sources", loaded["sources"], source_ids)
        parameters[name] = loaded["value"]
    return parameters


def _load_neuroanatomy(root: Path, concepts: Mapping[str, Concept], source_ids: set[str]) -> Neuroanatomy:
    file = "neuroanatomy.yaml"
    data = load_file(root, file, NeuroanatomySchema())
    check_sources(file, "sources", data["sources"], source_ids)
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
        RootMap(
            root_name,
            *(
                check(f"roots.{root_name}.{key}", raw[key])
                for key in ("sensory_sites", "key_muscles", "motor_findings", "reflexes", "disc_levels")
            ),
        )
        for root_name, raw in sorted(data["roots"].items())
    )

    def patterns(section: str) -> tuple[Mimic, ...]:
        return tuple(
            Mimic(
                name,
                check(f"{section}.{name}.concept", [raw["concept"]])[0],
                raw["grade"],
                check(f"{section}.{name}.findings", raw["findings"]),
                check(f"{section}.{name}.sensory_sites", raw["sensory_sites"]),
                raw["label"],
            )
            for name, raw in sorted(data[section].items())
        )

    return Neuroanatomy(
        tuple(data["sources"]),
        check("sensory_findings", data["sensory_findings"]),
        roots,
        patterns("mimics"),
        patterns("negatives"),
        data["polyneuropathy"],
    )


def _load_conclusions(root: Path, systems: Mapping[str, str]) -> dict[str, ConclusionDef]:
    file = "conclusions.yaml"
    data = read_yaml(root, file)
    if not isinstance(data, dict):
        raise KnowledgeError(file, "-", "must map conclusion names to definitions")
    result = {}
    for rank, (name, raw) in enumerate(data.items()):
        loaded = validate_with(ConclusionSchema(), raw, file, name)
        outcome = loaded["outcome"]
        if outcome["system"] not in systems:
            raise KnowledgeError(file, f"{name}.outcome.system", f"unknown system {outcome['system']!r}")
        result[name] = ConclusionDef(
            name,
            loaded["text"],
            Coding(systems[outcome["system"]], outcome["code"], outcome["display"], "A", "contract"),
            loaded["per_root"],
            rank,
            loaded["red_flag"],
        )
    return result


def _load_pathways(root: Path, source_ids: set[str]) -> dict[str, PathwayDef]:
    file = "pathways.yaml"
    data = read_yaml(root, file)
    if not isinstance(data, dict) or "insufficient-information" not in data:
        raise KnowledgeError(file, "-", "must define the pathways, including insufficient-information")
    result = {}
    for rank, (code, raw) in enumerate(data.items()):
        loaded = validate_with(PathwaySchema(), raw, file, code)
        check_sources(file, f"{code}.sources", loaded["sources"], source_ids)
        result[code] = PathwayDef(
            code,
            loaded["display"],
            " ".join(loaded["mitigation"].split()),
            " ".join(loaded["safety_net"].split()),
            tuple(loaded["sources"]),
            rank,
            loaded["card"],
        )
    return result


def _load_guidance(
    root: Path,
    source_ids: set[str],
    conclusions: Mapping[str, ConclusionDef],
    pathways: Mapping[str, PathwayDef],
) -> tuple[Guidance, ...]:
    file = "guidance.yaml"
    items = load_file(root, file, GuidanceSchema(), many=True)
    result = []
    for i, raw in enumerate(items):
        ((kind, name),) = raw["target"].items()
        known = conclusions if kind == "conclusion" else pathways
        if name not in known:
            raise KnowledgeError(file, f"[{i}] {raw['id']}.for.{kind}", f"unknown {kind} {name!r}")
        check_sources(file, f"[{i}] {raw['id']}.sources", raw["sources"], source_ids)
        result.append(
            Guidance(
                raw["id"],
                (kind, name),
                raw["title"],
                " ".join(raw["text"].split()),
                tuple(raw["sources"]),
                raw["audience"],
            )
        )
    return tuple(result)


def _load_gaps(root: Path, source_ids: set[str], names: set[str]) -> tuple[Gap, ...]:
    file = "gaps.yaml"
    items = load_file(root, file, GapSchema(), many=True)
    result = []
    for i, raw in enumerate(items):
        for field in ("when", "missing"):
            check_known(file, f"[{i}] {raw['id']}.{field}", raw[field], names, "name")
        check_sources(file, f"[{i}] {raw['id']}.sources", raw["sources"], source_ids)
        result.append(
            Gap(
                raw["id"],
                tuple(raw["when"]),
                tuple(raw["missing"]),
                " ".join(raw["text"].split()),
                tuple(raw["sources"]),
            )
        )
    return tuple(result)
