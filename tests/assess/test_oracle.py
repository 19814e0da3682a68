"""Differential test: the rule engine and a naive evaluator (tests/support/oracle.py) must agree.

On every sample, every real-world bundle the service assesses, and thousands of generated
patients: the same pathway, conclusions (root, sides, risk) and the rules behind each.
SPINEFOOT_ORACLE_CASES sets how many generated patients (default 2000; more by hand).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from service.assess.dates import parse_instant
from service.assess.fact import FactSet
from service.assess.facts import build_facts
from service.assess.intake import read_bundle
from service.assess.parse import Limits, read_body
from service.assess.reasoning import Reasoner
from service.errors import SpinefootError
from service.knowledge import Knowledge
from tests.support.generate import generated_bundle
from tests.support.oracle import evaluate, from_inference
from tests.support.paths import FIXED_NOW, REALWORLD, SAMPLE_FILES

CASES = int(os.environ.get("SPINEFOOT_ORACLE_CASES", "2000"))
REAL = sorted((REALWORLD / "synthea").glob("*/*.json")) + sorted(
    (REALWORLD / "hl7-r4-examples" / "Bundle").glob("*.json")
)


@pytest.fixture(scope="module")
def reasoner(kb: Knowledge) -> Reasoner:
    return Reasoner(kb)


def agree(kb: Knowledge, reasoner: Reasoner, bundle: dict[str, Any], as_of: str) -> bool:
    """Both evaluators on one patient; False when the bundle is not assessable at all."""
    try:
        record = read_bundle(bundle)
    except SpinefootError:
        return False
    facts = build_facts(record, kb, parse_instant(as_of))
    assert from_inference(reasoner.infer(facts)) == evaluate(kb, facts)
    return True


@pytest.mark.parametrize("path", SAMPLE_FILES + REAL, ids=lambda p: p.stem[:40])
def test_samples_and_real_world_bundles(kb: Knowledge, reasoner: Reasoner, path: Path) -> None:
    request = read_body(path.read_bytes(), "2026-03-01T09:00:00Z", lambda: FIXED_NOW, Limits())
    agree(kb, reasoner, request.bundle, "2026-03-01T09:00:00Z")


@pytest.mark.slow  # 2,000 generated patients through both evaluators
def test_generated_patients(kb: Knowledge, reasoner: Reasoner) -> None:
    assessed = 0
    for seed in range(CASES):
        bundle, as_of = generated_bundle(seed)
        try:
            assessed += agree(kb, reasoner, bundle, as_of)
        except AssertionError:
            pytest.fail(
                f"engine and oracle disagree on generated patient {seed}:\n{json.dumps(bundle)[:2000]}"
            )
    assert assessed >= CASES * 0.95  # the generator makes valid patients


def shapes(facts: FactSet) -> set[str]:
    """The shapes of record the semantics of issue 10 turn on, found in one patient's facts."""
    found = {f"abi {f.get('grade')}" for f in facts.facts if f.get("concept") == "ankle_brachial_index"}
    found |= {f"pulses {f.get('status')}" for f in facts.facts if f.get("concept") == "absent_foot_pulse"}
    found |= {
        "stenosis past 12 weeks, not 3 months"
        for f in facts.facts
        if f.get("concept") == "spinal_stenosis"
        and f.get("current") is False
        and f.get("long_standing") is False
    }
    contradicted = {f.get("side") for f in facts.facts if f.get("contradicted")}
    open_sides = {
        f.get("side")
        for f in facts.facts
        if f.get("contradicted") is False
        and f.get("status") == "active"
        and f.get("side") in ("left", "right")
    }
    if contradicted and open_sides - contradicted:
        found.add("negative on one side, symptoms open on the other")
    return found


@pytest.mark.slow
def test_the_oracle_is_not_trivially_agreeing(kb: Knowledge) -> None:
    """It does reach conclusions and pathways of every kind on the generated patients, and the
    generator makes the shapes the reasoning turns on."""
    pathways, conclusions, seen = set(), set(), set()
    for seed in range(1000):  # surgical consultation first appears at seed 413
        bundle, as_of = generated_bundle(seed)
        facts = build_facts(read_bundle(bundle), kb, parse_instant(as_of))
        outcome = evaluate(kb, facts)
        pathways.add(outcome.pathway)
        conclusions |= {c[0] for c in outcome.conclusions}
        seen |= shapes(facts)
    assert pathways == set(kb.pathways)
    assert len(conclusions) >= len(kb.conclusions) - 2
    assert seen == {
        "abi low",
        "abi normal",
        "pulses active",
        "pulses absent",
        "stenosis past 12 weeks, not 3 months",
        "negative on one side, symptoms open on the other",
    }
