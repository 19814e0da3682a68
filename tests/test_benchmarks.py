"""The benchmark code keeps working (no timing is asserted here: see docs/performance.md)."""

from __future__ import annotations

import json

from benchmarks.bundles import cases, grown
from benchmarks.stages import STAGES, measure


def test_the_grown_bundles_have_their_size_and_one_patient() -> None:
    bundle = json.loads(grown(60))
    assert len(bundle["entry"]) == 60
    assert [e["resource"]["resourceType"] for e in bundle["entry"]].count("Patient") == 1


def test_every_stage_is_measured_on_the_smallest_case() -> None:
    timings = measure(cases()[0], runs=2)
    assert set(timings) == set(STAGES) and all(len(v) == 2 for v in timings.values())
