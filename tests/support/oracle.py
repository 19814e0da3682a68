"""A second, deliberately naive evaluator of the knowledge base, for differential tests only.

No durable-rules, no Rete, no cleverness: every rule is tried against every combination of known
facts until nothing new appears; then the `unless` withdrawals, the pathway by rank, and each
conclusion's risk and rules, straight from their definitions in knowledge/README.md. Facts are
identified by their content. If this and the service disagree, one of them is wrong.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from service.assess.fact import FactSet
from service.assess.reasoning import Inference
from service.knowledge import RISKS, Knowledge, Rule

Content = frozenset[tuple[str, Any]]  # a fact: its fields, "t" (the kind) among them


@dataclass(frozen=True)
class Outcome:
    """What both evaluators must agree on."""

    pathway: str
    pathway_rules: tuple[str, ...]
    conclusions: tuple[tuple[str, str | None, tuple[str, ...], str, tuple[str, ...]], ...]
    # (conclusion, root, sides, risk, rules behind it)


def from_inference(inference: Inference) -> Outcome:
    return Outcome(
        inference.pathway.code,
        inference.pathway_why.rules if inference.pathway_why else (),
        tuple(
            sorted((c.definition.name, c.root, c.sides, c.risk, c.why.rules) for c in inference.conclusions)
        ),
    )


def evaluate(kb: Knowledge, facts: FactSet) -> Outcome:
    known: set[Content] = {frozenset({("t", f.kind), *f.attrs}) for f in facts.facts}
    inputs = set(known)
    ways: set[tuple[Content, str, tuple[Content, ...]]] = set()  # (fact, rule, parents)
    while True:
        found = {way for rule in kb.rules for way in _fire(rule, known)} - ways
        if not found:
            break
        ways |= found
        known |= {fact for fact, _, _ in found}
    evidence = {dict(fact)["name"] for fact, _, _ in ways if dict(fact)["t"] == "evidence"}
    rules = {rule.id: rule for rule in kb.rules}
    allowed = {
        (fact, rule, parents) for fact, rule, parents in ways if not set(rules[rule].unless) & evidence
    }
    alive = set(inputs)
    while True:  # a fact lives if some allowed way to it starts from living facts only
        more = {fact for fact, _, parents in allowed if set(parents) <= alive} - alive
        if not more:
            break
        alive |= more
    live_ways = {
        (fact, rule, parents) for fact, rule, parents in allowed if fact in alive and set(parents) <= alive
    }
    order = {rule.id: i for i, rule in enumerate(kb.rules)}

    def rules_behind(targets: set[Content]) -> tuple[str, ...]:
        behind: set[str] = set()
        todo, seen = list(targets), set()
        while todo:
            fact = todo.pop()
            if fact in seen:
                continue
            seen.add(fact)
            for target, rule, parents in live_ways:
                if target == fact:
                    behind.add(rule)
                    todo.extend(parents)
        return tuple(sorted(behind, key=order.__getitem__))

    pathways = {dict(f)["name"] for f in alive if dict(f)["t"] == "pathway"}
    if pathways:
        best = min(pathways, key=lambda name: kb.pathways[name].rank)
        pathway = (
            best,
            rules_behind({f for f in alive if dict(f)["t"] == "pathway" and dict(f)["name"] == best}),
        )
    else:
        pathway = ("insufficient-information", ())
    conclusions = []
    groups: dict[tuple[str, str | None], set[Content]] = {}
    for fact in alive:
        fields = dict(fact)
        if fields["t"] == "conclusion":
            per_root = kb.conclusions[fields["name"]].per_root
            groups.setdefault((fields["name"], fields.get("root") if per_root else None), set()).add(fact)
    for (name, root), group in groups.items():
        risks = [rules[rule].then.risk or "low" for fact, rule, _ in live_ways if fact in group]
        risk = max(risks, key=RISKS.index)
        kinds = {dict(f).get("kind") for f in group} - {None}
        if kb.conclusions[name].per_root and len(kinds) >= kb.parameter("radiculopathy_high_risk_min_kinds"):
            risk = max(risk, "high", key=RISKS.index)
        sides = sorted({dict(f).get("side") or "unspecified" for f in group})
        if len(sides) > 1:
            sides = [s for s in sides if s != "unspecified"]
        conclusions.append((name, root, tuple(sides), risk, rules_behind(group)))
    return Outcome(pathway[0], pathway[1], tuple(sorted(conclusions)))


def _fire(rule: Rule, known: set[Content]) -> set[tuple[Content, str, tuple[Content, ...]]]:
    candidates = [[f for f in known if _matches(condition, dict(f))] for condition in rule.when]
    ways = set()
    for combination in itertools.product(*candidates):
        fields = [dict(f) for f in combination]
        if all(
            fields[i].get(name) is not None and fields[i].get(name) == fields[index].get(name)
            for i, condition in enumerate(rule.when)
            for name, index in condition.same
        ):
            derived: dict[str, Any] = {"t": rule.then.fact, "name": rule.then.name, **dict(rule.then.set)}
            for name, index in rule.then.copy:
                if fields[index].get(name) is not None:
                    derived[name] = fields[index][name]
            ways.add((frozenset(derived.items()), rule.id, combination))
    return ways


def _matches(condition: Any, fields: dict[str, Any]) -> bool:
    return fields["t"] == condition.fact and all(
        name in fields and fields[name] in values and type(fields[name]) is type(values[0])
        for name, values in condition.match
    )
