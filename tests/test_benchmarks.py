"""The benchmark code keeps working (no timing is asserted here: see docs/performance.md)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.bundles import cases, grown
from benchmarks.screen import BEGIN, END, population, section_of, without_section
from benchmarks.stages import STAGES, measure


def test_the_grown_bundles_have_their_size_and_one_patient() -> None:
    bundle = json.loads(grown(60))
    assert len(bundle["entry"]) == 60
    assert [e["resource"]["resourceType"] for e in bundle["entry"]].count("Patient") == 1


def test_every_stage_is_measured_on_the_smallest_case() -> None:
    timings = measure(cases()[0], runs=2)
    assert set(timings) == set(STAGES) and all(len(v) == 2 for v in timings.values())


def test_the_screening_benchmark_builds_a_population_and_keeps_its_section(tmp_path: Path
                                                                           ) -> None:
    export = population(5, tmp_path / "export")
    manifest = json.loads((export / "manifest.json").read_text())
    patients = (export / "Patient.ndjson").read_text().splitlines()
    assert len(patients) == 5 and {o["type"] for o in manifest["output"]} >= {"Condition"}
    section = f"\n{BEGIN}\n## Population screening\n| row |\n{END}\n"
    document = "# Performance\n\n## Over HTTP\n" + section
    assert section_of(document) == section
    assert without_section(document) == "# Performance\n\n## Over HTTP\n"
