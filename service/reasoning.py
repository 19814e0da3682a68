"""Forward-chain the knowledge rules over a patient's facts and explain every conclusion.

The engine derives candidate evidence, conclusions and pathways, each carrying the rule and
the facts it came from. Decisions the engine cannot make safely happen here, from what the
knowledge declares: `unless` withdrawals (no engine negation), the pathway with the best rank
wins, and each conclusion's risk and provenance are gathered from its derivations.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.engine import Fact, RuleEngine, compile_rule
from service.facts import FactSet, InputFact
from service.knowledge import (
    DERIVED_FACTS,
    INPUT_FACTS,
    RISKS,
    ConclusionDef,
    Knowledge,
    PathwayDef,
    Rule,
)


@dataclass(frozen=True)
class Provenance:
    rules: tuple[str, ...]  # rule ids, in knowledge order
    findings: tuple[InputFact, ...]  # the input facts behind it


@dataclass(frozen=True)
class Conclusion:
    definition: ConclusionDef
    root: str | None
    sides: tuple[str, ...]  # ("unspecified",) alone, or only named sides
    risk: str
    why: Provenance


@dataclass(frozen=True)
class Inference:
    conclusions: tuple[Conclusion, ...]  # most urgent first
    pathway: PathwayDef
    pathway_why: Provenance | None  # None when nothing proposed a pathway
    present: frozenset[str]  # derived names and present concepts, for the data-gap checks
    fired: frozenset[str]  # ids of the rules behind every derivation that survived


class Reasoner:
    """Compiled once per knowledge base; `infer` is safe to call from any thread."""

    def __init__(self, kb: Knowledge) -> None:
        self.kb = kb
        self._rules = {rule.id: rule for rule in kb.rules}
        self._order = {rule.id: i for i, rule in enumerate(kb.rules)}
        compiled = {rule.id: compile_rule([(c.fact, c.match, c.same) for c in rule.when])
                    for rule in kb.rules}
        digest = hashlib.sha256(json.dumps(compiled, sort_keys=True).encode()).hexdigest()[:12]
        self.engine = RuleEngine(
            f"{kb.id}-{kb.version}-{digest}", compiled,
            {rule.id: _derive_action(rule) for rule in kb.rules}, INPUT_FACTS + DERIVED_FACTS)

    def infer(self, facts: FactSet) -> Inference:
        inputs = {f"F{i}": fact for i, fact in enumerate(facts.facts, 1)}
        engine_facts = [{"t": fact.kind, "id": fid, **dict(fact.attrs)}
                        for fid, fact in inputs.items()]
        derived = {f["id"]: f for f in self.engine.run(engine_facts) if f["t"] in DERIVED_FACTS}
        alive = self._surviving(derived)
        conclusions = self._conclusions(alive, derived, inputs)
        pathway, why = self._pathway(alive, derived, inputs)
        present = {f["name"] for f in alive.values()} | {
            str(f.get("concept")) for f in inputs.values()
            if f.kind == "finding" and f.get("status") == "active"}
        return Inference(conclusions, pathway, why, frozenset(present),
                         frozenset(f["rule"] for f in alive.values()))

    # -- withdrawal (`unless`) in dependency order

    def _surviving(self, derived: Mapping[str, Fact]) -> dict[str, Fact]:
        present = {f["name"] for f in derived.values() if f["t"] == "evidence"}
        decided: dict[str, bool] = {}

        def is_withdrawn(fid: str) -> bool:
            fact = derived.get(fid)
            if fact is None:  # an input fact
                return False
            if fid not in decided:
                decided[fid] = any(
                    name in present for name in self._rules[fact["rule"]].unless) or any(
                    is_withdrawn(parent) for parent in fact["parents"])
            return decided[fid]

        return {fid: fact for fid, fact in derived.items() if not is_withdrawn(fid)}

    # -- provenance

    def _provenance(self, fact_ids: list[str], derived: Mapping[str, Fact],
                    inputs: Mapping[str, InputFact]) -> Provenance:
        rules: set[str] = set()
        leaves: set[str] = set()
        stack = list(fact_ids)
        while stack:
            fid = stack.pop()
            if fid in inputs:
                leaves.add(fid)
            elif fid in derived:
                rules.add(derived[fid]["rule"])
                stack.extend(derived[fid]["parents"])
        return Provenance(
            tuple(sorted(rules, key=self._order.__getitem__)),
            tuple(inputs[fid] for fid in sorted(leaves, key=lambda x: int(x[1:]))))

    def _conclusions(self, alive: Mapping[str, Fact], derived: Mapping[str, Fact],
                     inputs: Mapping[str, InputFact]) -> tuple[Conclusion, ...]:
        groups: dict[tuple[str, str | None], list[Fact]] = {}
        for fact in alive.values():
            if fact["t"] == "conclusion":
                definition = self.kb.conclusions[fact["name"]]
                root = fact.get("root") if definition.per_root else None
                groups.setdefault((fact["name"], root), []).append(fact)
        results = []
        for (name, root), group in groups.items():
            definition = self.kb.conclusions[name]
            risk = max((self._rules[f["rule"]].then.risk or "low" for f in group),
                       key=RISKS.index)
            kinds = {f.get("kind") for f in group if f.get("kind")}
            if definition.per_root and len(kinds) >= self.kb.parameter(
                    "radiculopathy_high_risk_min_kinds"):
                risk = max(risk, "high", key=RISKS.index)
            sides = sorted({f.get("side") or "unspecified" for f in group})
            if len(sides) > 1:
                sides = [s for s in sides if s != "unspecified"]
            results.append(Conclusion(definition, root, tuple(sides), risk,
                                      self._provenance([f["id"] for f in group], derived, inputs)))
        return tuple(sorted(results, key=lambda c: (c.definition.rank, c.root or "")))

    def _pathway(self, alive: Mapping[str, Fact], derived: Mapping[str, Fact],
                 inputs: Mapping[str, InputFact]) -> tuple[PathwayDef, Provenance | None]:
        candidates = [f for f in alive.values() if f["t"] == "pathway"]
        if not candidates:
            return self.kb.pathways["insufficient-information"], None
        best = min((self.kb.pathways[f["name"]] for f in candidates), key=lambda p: p.rank)
        chosen = [f["id"] for f in candidates if f["name"] == best.code]
        return best, self._provenance(chosen, derived, inputs)


def _derive_action(rule: Rule) -> Any:
    then = rule.then

    def derive(matched: Mapping[str, Fact]) -> Fact:
        parents = [matched[f"c{i}"] for i in range(len(rule.when))]
        parent_ids = [str(p["id"]) for p in parents]
        fact: Fact = {"t": then.fact, "name": then.name, **dict(then.set)}
        for field, index in then.copy:
            value = parents[index].get(field)
            if value is not None:
                fact[field] = value
        key = f"{rule.id}|{'|'.join(parent_ids)}"
        fact.update(id="D" + hashlib.sha256(key.encode()).hexdigest()[:16], rule=rule.id,
                    parents=parent_ids)
        return fact

    return derive
