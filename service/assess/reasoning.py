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

from service.assess.engine import Fact, RuleEngine, compile_rule
from service.assess.fact import FactSet, InputFact
from service.knowledge import (
    DERIVED_FACTS,
    INPUT_FACTS,
    RISKS,
    ConclusionDef,
    Knowledge,
    PathwayDef,
    Rule,
)

Way = tuple[str, tuple[str, ...]]  # (rule id, ids of the facts it matched)


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
        compiled = {
            rule.id: compile_rule([(c.fact, c.match, c.same) for c in rule.when]) for rule in kb.rules
        }
        digest = hashlib.sha256(json.dumps(compiled, sort_keys=True).encode()).hexdigest()[:12]
        self.engine = RuleEngine(
            f"{kb.id}-{kb.version}-{digest}",
            compiled,
            {rule.id: _derive_action(rule) for rule in kb.rules},
            INPUT_FACTS + DERIVED_FACTS,
        )

    def infer(self, facts: FactSet) -> Inference:
        """Identical input facts (the same finding recorded twice) enter the engine once, and
        each derived fact once however many ways it is derived: the engine's work is bounded by
        what is distinct, not by the size of the record."""
        groups: dict[tuple[str, Any], list[InputFact]] = {}
        for fact in facts.facts:
            groups.setdefault((fact.kind, fact.attrs), []).append(fact)
        inputs = {f"F{i}": members for i, members in enumerate(groups.values(), 1)}
        engine_facts = [
            {"t": kind, "id": fid, **dict(attrs)} for fid, (kind, attrs) in zip(inputs, groups, strict=True)
        ]
        result, records = self.engine.run(engine_facts)
        derived = {f["id"]: f for f in result if f["t"] in DERIVED_FACTS}
        ways: dict[str, set[Way]] = {fid: set() for fid in derived}
        for fid, derivation in records:
            ways[fid].add(derivation)
        live = self._surviving(derived, ways)
        alive = {fid: derived[fid] for fid in live}
        conclusions = self._conclusions(alive, live, inputs)
        pathway, why = self._pathway(alive, live, inputs)
        present = {f["name"] for f in alive.values()} | {
            str(f.get("concept"))
            for members in inputs.values()
            for f in members
            if f.kind == "finding" and f.get("status") == "active"
        }
        return Inference(
            conclusions,
            pathway,
            why,
            frozenset(present),
            frozenset(rule for found in live.values() for rule, _ in found),
        )

    # -- withdrawal (`unless`)

    def _surviving(self, derived: Mapping[str, Fact], ways: Mapping[str, set[Way]]) -> dict[str, set[Way]]:
        """The derivations that survive, by fact: a derivation survives when its rule's `unless`
        names no evidence present and every derived parent has a surviving derivation (the least
        fixpoint, so a fact cannot keep itself alive through a cycle)."""
        present = {f["name"] for f in derived.values() if f["t"] == "evidence"}
        allowed = {
            fid: {d for d in found if not any(name in present for name in self._rules[d[0]].unless)}
            for fid, found in ways.items()
        }
        live: dict[str, set[Way]] = {}
        changed = True
        while changed:
            changed = False
            for fid, found in allowed.items():
                ok = {d for d in found if all(p in live or p not in derived for p in d[1])}
                if ok != live.get(fid, set()) and ok:
                    live[fid] = ok
                    changed = True
        return live

    # -- provenance

    def _provenance(
        self, fact_ids: list[str], live: Mapping[str, set[Way]], inputs: Mapping[str, list[InputFact]]
    ) -> Provenance:
        rules: set[str] = set()
        leaves: set[str] = set()
        seen: set[str] = set()
        stack = list(fact_ids)
        while stack:
            fid = stack.pop()
            if fid in seen:
                continue
            seen.add(fid)
            if fid in inputs:
                leaves.add(fid)
            for rule, parents in live.get(fid, ()):
                rules.add(rule)
                stack.extend(parents)
        return Provenance(
            tuple(sorted(rules, key=self._order.__getitem__)),
            tuple(fact for fid in sorted(leaves, key=lambda x: int(x[1:])) for fact in inputs[fid]),
        )

    def _conclusions(
        self, alive: Mapping[str, Fact], live: Mapping[str, set[Way]], inputs: Mapping[str, list[InputFact]]
    ) -> tuple[Conclusion, ...]:
        groups: dict[tuple[str, str | None], list[Fact]] = {}
        for fact in alive.values():
            if fact["t"] == "conclusion":
                definition = self.kb.conclusions[fact["name"]]
                root = fact.get("root") if definition.per_root else None
                groups.setdefault((fact["name"], root), []).append(fact)
        results = []
        for (name, root), group in groups.items():
            definition = self.kb.conclusions[name]
            risk = max(
                (self._rules[rule].then.risk or "low" for f in group for rule, _ in live[f["id"]]),
                key=RISKS.index,
            )
            kinds = {f.get("kind") for f in group if f.get("kind")}
            if definition.per_root and len(kinds) >= self.kb.parameter("radiculopathy_high_risk_min_kinds"):
                risk = max(risk, "high", key=RISKS.index)
            sides = sorted({f.get("side") or "unspecified" for f in group})
            if len(sides) > 1:
                sides = [s for s in sides if s != "unspecified"]
            results.append(
                Conclusion(
                    definition,
                    root,
                    tuple(sides),
                    risk,
                    self._provenance([f["id"] for f in group], live, inputs),
                )
            )
        return tuple(sorted(results, key=lambda c: (c.definition.rank, c.root or "")))

    def _pathway(
        self, alive: Mapping[str, Fact], live: Mapping[str, set[Way]], inputs: Mapping[str, list[InputFact]]
    ) -> tuple[PathwayDef, Provenance | None]:
        candidates = [f for f in alive.values() if f["t"] == "pathway"]
        if not candidates:
            return self.kb.pathways["insufficient-information"], None
        best = min((self.kb.pathways[f["name"]] for f in candidates), key=lambda p: p.rank)
        chosen = [f["id"] for f in candidates if f["name"] == best.code]
        return best, self._provenance(chosen, live, inputs)


def _derive_action(rule: Rule) -> Any:
    """The derived fact's id is a digest of its content, so one conclusion reached several ways
    is one fact; each way is recorded as (fact id, (rule id, parent ids))."""
    then = rule.then

    def derive(matched: Mapping[str, Fact]) -> tuple[Fact, tuple[str, Way]]:
        parents = [matched[f"c{i}"] for i in range(len(rule.when))]
        fact: Fact = {"t": then.fact, "name": then.name, **dict(then.set)}
        for field, index in then.copy:
            value = parents[index].get(field)
            if value is not None:
                fact[field] = value
        content = json.dumps(fact, sort_keys=True)
        fact["id"] = "D" + hashlib.sha256(content.encode()).hexdigest()[:16]
        return fact, (fact["id"], (rule.id, tuple(str(p["id"]) for p in parents)))

    return derive
