"""In-process cost of each stage of one assessment, median and p99 over repeated runs."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks.bundles import AS_OF, Case
from service.assess import fhir
from service.assess.dates import parse_instant
from service.assess.facts import build_facts
from service.assess.intake import patient_record
from service.assess.parse import Limits, parse_json
from service.assess.reasoning import Reasoner
from service.assess.report import build_risk_assessment, explain
from service.knowledge import load_knowledge

STAGES = ("parse JSON", "validate FHIR", "map facts", "rules", "build + serialise", "total")


def measure(case: Case, runs: int) -> dict[str, list[float]]:
    """Seconds per stage, per run (after two warm-up runs)."""
    kb = load_knowledge()
    reasoner = Reasoner(kb)
    as_of = parse_instant(AS_OF)
    limits = Limits(max_entries=1_000_000)
    timings: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for run in range(runs + 2):
        clock = _Clock()
        bundle = clock.time("parse JSON", parse_json, case.body, limits)
        issues = clock.time("validate FHIR", fhir.validate_bundle, bundle)
        assert not issues, issues[:3]
        record, facts = clock.time("map facts", _facts, bundle, kb, as_of)
        inference = clock.time("rules", reasoner.infer, facts)
        clock.time("build + serialise", _report, kb, record, facts, inference, as_of)
        if run >= 2:
            for stage, seconds in clock.spent.items():
                timings[stage].append(seconds)
            timings["total"].append(sum(clock.spent.values()))
    return timings


def _facts(bundle: Any, kb: Any, as_of: Any) -> tuple[Any, Any]:
    record = patient_record(bundle)
    return record, build_facts(record, kb, as_of)


def _report(kb: Any, record: Any, facts: Any, inference: Any, as_of: Any) -> str:
    resource = build_risk_assessment(kb, record, explain(kb, record, facts, inference), as_of)
    assert not fhir.validate_resource(resource)
    return json.dumps(resource, ensure_ascii=False)


class _Clock:
    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    def time(self, stage: str, step: Callable[..., Any], *args: Any) -> Any:
        started = time.perf_counter()
        result = step(*args)
        self.spent[stage] = self.spent.get(stage, 0.0) + time.perf_counter() - started
        return result


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def p99_ms(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
