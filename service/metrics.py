"""Prometheus metrics with the official client, correct under several gunicorn worker processes.

Under `spinefoot serve`, PROMETHEUS_MULTIPROC_DIR is set before this module is imported, so every
worker writes its values to files there and `/metrics` sums them (the client's multiprocess mode).
Without it (tests, `flask run`), each app counts in its own registry.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from service.errors import StartupError
from service.settings import MULTIPROC_ENV

CONTENT_TYPE = CONTENT_TYPE_LATEST  # exactly; already names its charset
# HTTP methods kept as labels and in the log; anything a client invents counts as OTHER, so that
# label sets stay closed (every other label comes from routes, statuses or the knowledge base)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Each worker's metric files are allocated on disk when it starts: the client writes through
# mmap, and a page the file system cannot supply kills the process (SIGBUS) instead of raising.
# Label sets are closed, so a worker's series fit in this many bytes per file (~6,000 values).
_RESERVED_BYTES = 1 << 20
_WORKER_FILES = ("counter", "histogram")
_PROBE_BYTES = 1 << 20
_RULES_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


class Metrics:
    """One set of metrics per app; the names are the public interface for dashboards."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "spinefoot_http_requests", "HTTP requests answered", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "spinefoot_http_request_duration_seconds",
            "Time from request to response",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.assessments = Counter(
            "spinefoot_assessments", "Assessments answered, by care pathway", ["pathway"], registry=r
        )
        self.rule_evaluations = Histogram(
            "spinefoot_rule_evaluation_duration_seconds",
            "Forward-chaining runs (one per assessment) and their duration",
            buckets=_RULES_BUCKETS,
            registry=r,
        )
        self.rules_fired = Counter("spinefoot_rules_fired", "Rule firings, by rule id", ["rule"], registry=r)
        self.errors = Counter("spinefoot_errors", "Error responses, by kind", ["kind"], registry=r)
        self.cds_feedback = Counter(
            "spinefoot_cds_feedback",
            "CDS Hooks card feedback, by outcome",
            ["service", "outcome"],
            registry=r,
        )

    @staticmethod
    def method_label(method: str) -> str:
        """The method if it is a standard one, else `other`: a client must not make new series."""
        return method if method in METHODS else OTHER

    def record_request(self, route: str, method: str, status: int, seconds: float) -> None:
        method = self.method_label(method)
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method, str(status)).observe(seconds)

    def record_assessment(self, pathway: str, rule_seconds: float, fired: tuple[str, ...]) -> None:
        self.assessments.labels(pathway).inc()
        self.rule_evaluations.observe(rule_seconds)
        for rule in fired:
            self.rules_fired.labels(rule).inc()

    def exposition(self) -> bytes:
        """The text format; in multiprocess mode, the sum over all live and past workers."""
        directory = os.environ.get(MULTIPROC_ENV)
        if directory:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


def mark_worker_dead(pid: int) -> None:
    """gunicorn's `child_exit`: drop a dead worker's live-gauge files (the client's documented
    multiprocess step); its counters stay, so totals do not fall when a worker restarts."""
    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def prepare_multiprocess_directory(directory: str) -> None:
    """Start from an empty directory (files left by a previous run would be summed in) and
    prove that it takes a worker's files: read-only or full is a StartupError, not a crash."""
    probe = os.path.join(directory, ".probe")
    try:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.endswith(".db"):
                os.remove(os.path.join(directory, name))
        with open(probe, "wb") as file:
            os.posix_fallocate(file.fileno(), 0, _PROBE_BYTES)
        os.remove(probe)
    except OSError as exc:
        raise StartupError(f"metrics directory {directory}: {exc.strerror}") from None


def reserve_worker_files(directory: str, pid: int) -> None:
    """Allocate this worker's metric files now (OSError if the disk is full), so that writing
    metrics later can never hit an unallocated page."""
    for kind in _WORKER_FILES:
        with open(os.path.join(directory, f"{kind}_{pid}.db"), "ab") as file:
            os.posix_fallocate(file.fileno(), 0, _RESERVED_BYTES)
