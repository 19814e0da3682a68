"""The durable-rules adapter: joins are exact (defect B5), failures surface, no state survives."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import pytest

from service.assess.engine import Fact, RuleEngine, compile_rule
from service.errors import EngineFailure

B_FACTS = [
    {"t": "b", "id": f"b{i}", "root": r, "kind": k}
    for i, (r, k) in enumerate(itertools.product(["L4", "L5", "S1"], ["x", "y", "z"]))
]


def _pairs_engine(name: str, pattern_b: Any) -> tuple[RuleEngine, list[tuple[str, str]]]:
    hits: list[tuple[str, str]] = []

    def record(matched: Mapping[str, Fact]) -> None:
        hits.append((matched["c0"]["id"], matched["c1"]["id"]))

    rule = compile_rule([("a", [], []), pattern_b])
    return RuleEngine(name, {"pair": rule}, {"pair": record}, ("a", "b")), hits


def test_join_with_alternatives_matches_only_equal_fields() -> None:
    engine, hits = _pairs_engine("test-b5", ("b", [("kind", ["x", "y"])], [("root", 0)]))
    engine.run([{"t": "a", "id": "a1", "root": "L5"}, *B_FACTS])
    assert sorted(hits) == [("a1", "b3"), ("a1", "b4")]  # L5 with kind x or y, nothing else


def test_run_returns_inputs_and_leaves_no_session_behind() -> None:
    engine, hits = _pairs_engine("test-clean", ("b", [("kind", ["z"])], [("root", 0)]))
    first, _ = engine.run([{"t": "a", "id": "a1", "root": "S1"}, *B_FACTS])
    second, _ = engine.run([{"t": "a", "id": "a1", "root": "L4"}])
    assert len(first) == 1 + len(B_FACTS) and len(second) == 1
    assert hits == [("a1", "b8")]  # the second run saw none of the first run's facts


def test_an_exception_inside_an_action_is_raised_not_swallowed() -> None:
    def broken(matched: Mapping[str, Fact]) -> Fact:
        raise ValueError("boom")

    rule = compile_rule([("a", [], [])])
    engine = RuleEngine("test-broken", {"r": rule}, {"r": broken}, ("a",))
    with pytest.raises(EngineFailure, match="boom"):
        engine.run([{"t": "a", "id": "a1"}])


def test_derived_facts_chain_to_another_rule() -> None:
    def derive(matched: Mapping[str, Fact]) -> tuple[Fact, str]:
        return {"t": "d", "id": "d1", "from": matched["c0"]["id"]}, f"d1<-{matched['c0']['id']}"

    seen: list[str] = []

    def consume(matched: Mapping[str, Fact]) -> None:
        seen.append(matched["c0"]["from"])

    rules = {"derive": compile_rule([("a", [], [])]), "consume": compile_rule([("d", [], [])])}
    engine = RuleEngine("test-chain", rules, {"derive": derive, "consume": consume}, ("a", "d"))
    result, records = engine.run([{"t": "a", "id": "a1"}])
    assert seen == ["a1"] and {f["t"] for f in result} == {"a", "d"}
    assert records == ["d1<-a1"]


def test_a_fact_derived_twice_is_asserted_once_with_both_records() -> None:
    def derive(matched: Mapping[str, Fact]) -> tuple[Fact, str]:
        return {"t": "d", "id": "same", "name": "x"}, matched["c0"]["id"]

    seen: list[str] = []
    rules = {"derive": compile_rule([("a", [], [])]), "consume": compile_rule([("d", [], [])])}
    engine = RuleEngine(
        "test-twice", rules, {"derive": derive, "consume": lambda m: seen.append(m["c0"]["id"])}, ("a", "d")
    )
    result, records = engine.run([{"t": "a", "id": "a1"}, {"t": "a", "id": "a2"}])
    assert sorted(records) == ["a1", "a2"]
    assert seen == ["same"] and [f["id"] for f in result if f["t"] == "d"] == ["same"]
