"""Rules: read from rules.yaml, generated from the neuroanatomy map, cross-checked.

A rule naming an unknown concept, field, derived name, conclusion or pathway stops startup.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from service.errors import KnowledgeError
from service.knowledge.files import check_known, check_sources, load_file, validate_with
from service.knowledge.model import (
    Concept,
    Condition,
    Derivation,
    Knowledge,
    Neuroanatomy,
    RootMap,
    Rule,
)
from service.knowledge.rule_schemas import (
    ConditionSchema,
    RuleSchema,
)
from service.knowledge.vocabulary import (
    DERIVED_FACTS,
    FACT_FIELDS,
)


def load_rules(root: Path, source_ids: set[str], concepts: Mapping[str, Concept]) -> tuple[Rule, ...]:
    file = "rules.yaml"
    raw_rules = load_file(root, file, RuleSchema(), many=True)
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        where = f"[{i}] {raw['id']}"
        if raw["id"] in seen:
            raise KnowledgeError(file, f"{where}.id", "duplicate rule id")
        seen.add(raw["id"])
        check_sources(file, f"{where}.sources", raw["sources"], source_ids)
        when = []
        for j, item in enumerate(raw["when"]):
            cond = validate_with(ConditionSchema(), item, file, f"{where}.when.{j}")
            match = cond["match"]
            for index in cond["same"].values():
                if index >= j:
                    raise KnowledgeError(file, f"{where}.when.{j}.same", "may only join to an earlier item")
            check_known(file, f"{where}.when.{j}.concept", match.get("concept", ()), concepts, "concept")
            when.append(
                Condition(cond["fact"], tuple(sorted(match.items())), tuple(sorted(cond["same"].items())))
            )
        then = raw["then"]
        target = next(k for k in DERIVED_FACTS if k in then)
        for field, index in then["copy"].items():
            if index >= len(when):
                raise KnowledgeError(file, f"{where}.then.copy.{field}", "no such when item")
            if field not in FACT_FIELDS[target]:
                raise KnowledgeError(
                    file, f"{where}.then.copy.{field}", f"a {target} fact has no field {field!r}"
                )
        rules.append(
            Rule(
                id=raw["id"],
                title=raw["title"],
                sources=tuple(raw["sources"]),
                when=tuple(when),
                then=Derivation(
                    target,
                    then[target],
                    then.get("risk"),
                    tuple(sorted(then["set"].items())),
                    tuple(sorted(then["copy"].items())),
                ),
                unless=tuple(raw["unless"]),
            )
        )
    return tuple(rules)


def generate_root_rules(neuro: Neuroanatomy) -> tuple[Rule, ...]:
    """Turn the dermatome/myotome/reflex map into root-evidence rules (one per root and kind).
    A finding a peripheral lesion explains is no root sign; a symmetric sensory or reflex finding
    has a rule of its own, withdrawn in a patient with polyneuropathy (length-dependent loss)."""
    rules: list[Rule] = []

    def rule(
        root: RootMap,
        kind: str,
        suffix: str,
        *match: tuple[str, tuple[Any, ...]],
        unless: tuple[str, ...] = (),
    ) -> Rule:
        return Rule(
            id=f"ROOT-{root.root}-{suffix}",
            title=f"{kind.capitalize()} finding in the {root.root} distribution"
            + (" on both sides (not with polyneuropathy)" if unless else ""),
            sources=neuro.sources,
            when=(Condition("finding", tuple(sorted(match))),),
            then=Derivation(
                "evidence", "root_evidence", None, (("kind", kind), ("root", root.root)), (("side", 0),)
            ),
            unless=unless,
            generated_from="neuroanatomy.yaml",
        )

    def per_symmetry(
        root: RootMap, kind: str, suffix: str, *match: tuple[str, tuple[Any, ...]]
    ) -> list[Rule]:
        own = (*match, ("explained", (False,)))
        return [
            rule(root, kind, suffix, *own, ("symmetric", (False,))),
            rule(
                root,
                kind,
                f"{suffix}-SYMMETRIC",
                *own,
                ("symmetric", (True,)),
                unless=(neuro.polyneuropathy,),
            ),
        ]

    for root in neuro.roots:
        if root.sensory_sites:
            rules += per_symmetry(
                root,
                "sensory",
                "SENSORY",
                ("concept", neuro.sensory_findings),
                ("site", root.sensory_sites),
                ("status", ("active",)),
            )
        if root.key_muscles:
            rules.append(
                rule(
                    root,
                    "motor",
                    "MOTOR",
                    ("concept", root.key_muscles),
                    ("grade", ("weak", "severe")),
                    ("explained", (False,)),
                )
            )
        if root.motor_findings:
            rules.append(
                rule(
                    root,
                    "motor",
                    "MOTOR-FINDING",
                    ("concept", root.motor_findings),
                    ("status", ("active",)),
                    ("explained", (False,)),
                )
            )
        if root.reflexes:
            rules += per_symmetry(
                root, "reflex", "REFLEX", ("concept", root.reflexes), ("grade", ("reduced",))
            )
        if root.disc_levels:
            rules.append(
                rule(
                    root,
                    "imaging",
                    "IMAGING",
                    ("concept", ("disc_herniation",)),
                    ("level", root.disc_levels),
                    ("status", ("active", "history")),
                )
            )
    return tuple(rules)


def derivable_names(kb: Knowledge) -> set[str]:
    return {rule.then.name for rule in kb.rules}


def check_rules(kb: Knowledge) -> None:
    """Cross-check rules against what can exist: derived names, conclusions, pathways."""
    file = "rules.yaml"
    derivable = derivable_names(kb)
    withdrawable = {rule.then.name for rule in kb.rules if rule.unless}
    for rule in kb.rules:
        target = rule.then
        if target.fact == "conclusion" and target.name not in kb.conclusions:
            raise KnowledgeError(
                file, f"{rule.id}.then.conclusion", f"{target.name!r} is not in conclusions.yaml"
            )
        if target.fact == "pathway" and target.name not in kb.pathways:
            raise KnowledgeError(file, f"{rule.id}.then.pathway", f"{target.name!r} is not in pathways.yaml")
        for j, cond in enumerate(rule.when):
            for field, values in cond.match:
                if field == "name":
                    for value in values:
                        if value not in derivable:
                            raise KnowledgeError(
                                file, f"{rule.id}.when.{j}.name", f"no rule derives {value!r}"
                            )
        for name in rule.unless:
            if name not in derivable:
                raise KnowledgeError(file, f"{rule.id}.unless", f"no rule derives {name!r}")
            if name in withdrawable:
                raise KnowledgeError(
                    file,
                    f"{rule.id}.unless",
                    f"{name!r} can itself be withdrawn; `unless` must name stable evidence",
                )
