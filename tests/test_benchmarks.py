"""The benchmark code keeps working (no timing is asserted here: see docs/performance.md)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.bare import FIXED, bare_app
from benchmarks.bundles import CHART_ENTRIES, CHART_FREQUENT, FREQUENT_TYPES, cases, chart, grown, unread
from benchmarks.screen import BEGIN, END, population, section_of, without_section
from benchmarks.stages import STAGES, measure, versus_json_loads


def test_the_grown_bundles_have_their_size_and_one_patient() -> None:
    bundle = json.loads(grown(60))
    assert len(bundle["entry"]) == 60
    assert [e["resource"]["resourceType"] for e in bundle["entry"]].count("Patient") == 1


def test_every_stage_is_measured_on_the_smallest_case() -> None:
    timings = measure(cases()[0], runs=2)
    assert set(timings) == set(STAGES) and all(len(v) == 2 for v in timings.values())


def test_the_screening_benchmark_builds_a_population_and_keeps_its_section(tmp_path: Path) -> None:
    export = population(5, tmp_path / "export")
    manifest = json.loads((export / "manifest.json").read_text())
    patients = (export / "Patient.ndjson").read_text().splitlines()
    assert len(patients) == 5 and {o["type"] for o in manifest["output"]} >= {"Condition"}
    section = f"\n{BEGIN}\n## Population screening\n| row |\n{END}\n"
    document = "# Performance\n\n## Over HTTP\n" + section
    assert section_of(document) == section
    assert without_section(document) == "# Performance\n\n## Over HTTP\n"


def test_the_chart_and_the_unread_bundles_have_their_size() -> None:
    chart_bundle = json.loads(chart(CHART_ENTRIES, CHART_FREQUENT))
    unread_bundle = json.loads(unread(25))
    types = [e["resource"]["resourceType"] for e in chart_bundle["entry"]]
    assert len(types) == CHART_ENTRIES and types.count("Patient") == 1
    assert sum(t in FREQUENT_TYPES for t in types) == CHART_FREQUENT
    assert len(unread_bundle["entry"]) == len(json.loads(unread(0))["entry"]) + 25


def test_assess_and_json_loads_are_timed_side_by_side() -> None:
    assess, loads = versus_json_loads(unread(5), runs=3)
    assert len(assess) == len(loads) == 3 and min(assess) > 0 and min(loads) > 0


def test_the_bare_app_parses_and_answers_a_fixed_resource() -> None:
    client = bare_app().test_client()
    assert client.post("/bare", data=b'{"resourceType": "Bundle"}').get_json() == json.loads(FIXED)
    assert client.post("/bare", data=b"not json").status_code == 500
