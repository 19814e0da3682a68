"""What one app holds for its whole life, in `app.extensions["spinefoot"]`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app, g

from service.assess.budget import Budget
from service.assess.pipeline import Assessment, Pipeline
from service.errors import NotReady, StorageUnavailable
from service.metrics import Metrics
from service.settings import Settings
from service.web.artifacts import Artifacts
from service.web.cds.auth import TokenVerifier


@dataclass
class Runtime:
    settings: Settings
    clock: Callable[[], datetime]
    metrics: Metrics = field(default_factory=Metrics)
    pipeline: Pipeline | None = None  # None until the knowledge base is loaded and compiled
    artifacts: Artifacts | None = None  # the knowledge as FHIR artifacts, built with the pipeline
    cds_verifier: TokenVerifier | None = None  # None: CDS Hooks JWTs not required
    metrics_writable: bool = True  # False: this worker's metric files could not be allocated
    budget_clock: Callable[[], float] = time.perf_counter  # for request budgets; tests fake it

    def note(self, assessment: Assessment) -> None:
        """An assessment answered (by `$assess` or CDS Hooks): its metrics and log fields."""
        g.care_pathway, g.entries = assessment.pathway, assessment.entry_count
        self.metrics.record_assessment(assessment.pathway, assessment.rule_seconds, assessment.fired)

    def budget(self) -> Budget:
        """A new request's processing budget, from now."""
        return Budget(self.settings.request_budget, self.budget_clock)

    def check_storage(self) -> None:
        """A worker that could not allocate its metric files answers 503 rather than crash."""
        if not self.metrics_writable:
            raise StorageUnavailable.single(
                "transient", "the data directory is full or not writable; retry shortly"
            )

    def ready_artifacts(self) -> Artifacts:
        self.ready_pipeline()
        assert self.artifacts is not None  # built with the pipeline
        return self.artifacts

    def ready_pipeline(self) -> Pipeline:
        if self.pipeline is None:
            raise NotReady.single("transient", "the knowledge base is still loading; retry shortly")
        return self.pipeline


def runtime() -> Runtime:
    value: Runtime = current_app.extensions["spinefoot"]
    return value
