"""In-process cost of each stage of one assessment, median and p99 over repeated runs, and of a
whole `$assess` against a bare `json.loads` of the same body."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks.bundles import AS_OF, Case
from service.assess import fhir
from service.assess.dates import parse_instant
from service.assess.explain import explain
from service.assess.facts import build_facts
from service.assess.intake import patient_record
from service.assess.parse import Limits, read_body
from service.assess.pipeline import Pipeline
from service.assess.reasoning import Reasoner
from service.assess.relevance import Relevance, unread_entries
from service.assess.report import build_risk_assessment
from service.knowledge import load_knowledge
from service.web.responses import fhir_response

STAGES = ("read body", "validate FHIR", "map facts", "rules", "build + serialise", "total")


def measure(case: Case, runs: int) -> dict[str, list[float]]:
    """Seconds per stage, per run (after two warm-up runs)."""
    kb = load_knowledge()
    reasoner = Reasoner(kb)
    relevance = Relevance(kb)
    as_of = parse_instant(AS_OF)
    limits = Limits(max_entries=1_000_000)
    timings: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for run in range(runs + 2):
        clock = _Clock()
        request = clock.time("read body", read_body, case.body, AS_OF, lambda: as_of, limits, relevance)
        bundle, unread = request.bundle, request.unread
        if unread is None:  # not skimmed: parsed whole, relevance decided now
            unread = clock.time("validate FHIR", unread_entries, bundle, relevance)
        issues = clock.time("validate FHIR", fhir.validate_bundle, bundle, lambda: None, unread)
        assert not issues, issues[:3]
        record, facts = clock.time("map facts", _facts, bundle, unread, kb, as_of)
        inference = clock.time("rules", reasoner.infer, facts)
        clock.time("build + serialise", _report, kb, record, facts, inference, as_of)
        if run >= 2:
            for stage, seconds in clock.spent.items():
                timings[stage].append(seconds)
            timings["total"].append(sum(clock.spent.values()))
    return timings


def versus_json_loads(body: bytes, runs: int) -> tuple[list[float], list[float]]:
    """Seconds of a whole in-process `$assess` and of a bare `json.loads` of the same body,
    run in turn so that both see the same machine."""
    pipeline = Pipeline(load_knowledge(), Limits(max_entries=1_000_000))
    as_of = parse_instant(AS_OF)
    assess, loads = [], []
    for run in range(runs + 2):
        started = time.perf_counter()
        pipeline.assess_body(body, AS_OF, lambda: as_of)
        middle = time.perf_counter()
        json.loads(body)
        if run >= 2:
            assess.append(middle - started)
            loads.append(time.perf_counter() - middle)
    return assess, loads


def _facts(bundle: Any, unread: Any, kb: Any, as_of: Any) -> tuple[Any, Any]:
    record = patient_record(bundle, unread)
    return record, build_facts(record, kb, as_of)


def _report(kb: Any, record: Any, facts: Any, inference: Any, as_of: Any) -> bytes:
    resource = build_risk_assessment(kb, record, explain(kb, record, facts, inference), as_of)
    return fhir_response(resource).get_data()


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
