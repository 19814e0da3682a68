"""One assessment, end to end: body -> bundle -> facts -> rules -> RiskAssessment."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.assess.budget import Budget, unlimited
from service.assess.explain import Explanation, explain
from service.assess.facts import build_facts
from service.assess.intake import read_bundle
from service.assess.parse import Limits, check_entry_count, read_body
from service.assess.reasoning import Reasoner
from service.assess.relevance import Relevance
from service.assess.report import build_risk_assessment
from service.knowledge import Knowledge


@dataclass(frozen=True)
class Assessment:
    resource: dict[str, Any]
    pathway: str
    entry_count: int
    fired: tuple[str, ...]  # the rules behind the surviving conclusions, sorted
    rule_seconds: float  # forward chaining alone, for the metrics
    explanation: Explanation  # what the resource says, for cards and pages


class Pipeline:
    """Built once per process from a loaded knowledge base; stateless between calls."""

    def __init__(self, kb: Knowledge, limits: Limits | None = None) -> None:
        self.kb = kb
        self.limits = limits or Limits()
        self.reasoner = Reasoner(kb)
        self.relevance = Relevance(kb)

    def assess_body(
        self, body: bytes, as_of: str | None, now: Callable[[], datetime], budget: Budget | None = None
    ) -> Assessment:
        budget = budget or unlimited()
        request = read_body(body, as_of, now, self.limits, self.relevance)
        return self.assess_bundle(request.bundle, request.as_of, budget, request.unread)

    def assess_bundle(
        self,
        bundle: dict[str, Any],
        as_of: datetime,
        budget: Budget | None = None,
        unread: dict[int, str] | None = None,
    ) -> Assessment:
        """`unread`: the entries already found not read (a skimmed body holds only their headers)."""
        budget = budget or unlimited()
        check_entry_count(bundle, self.limits)
        budget.check()
        record = read_bundle(bundle, budget.check, self.relevance, unread)
        facts = build_facts(record, self.kb, as_of)
        budget.check()  # the engine's run is short and cannot be interrupted: it is the last
        started = time.perf_counter()
        inference = self.reasoner.infer(facts)
        rule_seconds = time.perf_counter() - started
        explanation = explain(self.kb, record, facts, inference)
        # valid R4 by construction: the tests validate every one they make (tests/conftest.py),
        # which cost 0.3 ms a request here
        resource = build_risk_assessment(self.kb, record, explanation, as_of)
        return Assessment(
            resource,
            inference.pathway.code,
            record.entry_count,
            tuple(sorted(inference.fired)),
            rule_seconds,
            explanation,
        )
