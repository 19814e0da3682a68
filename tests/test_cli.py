"""`spinefoot assess` prints the same answer as the HTTP API (serving is in test_server.py)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from service.cli import main
from tests.support.assess import expected_for, summary
from tests.support.paths import SAMPLE_FILES, SAMPLES


def test_assess_prints_the_risk_assessment(capsys: pytest.CaptureFixture[str]) -> None:
    sample = SAMPLE_FILES[0]
    exp = expected_for(sample)
    assert main(["assess", str(sample), "--as-of", exp["asOf"]]) == 0
    resource = json.loads(capsys.readouterr().out)
    assert summary(resource) == {"pathway": exp["pathway"], "predictions": exp["predictions"]}


def test_assess_several_files_prints_one_line_each(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["assess", *map(str, SAMPLE_FILES[:3]), "--as-of", "2026-03-01T09:00:00Z"]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["resourceType"] for line in out.splitlines()] == ["RiskAssessment"] * 3
    summaries = err.splitlines()
    for sample, line in zip(SAMPLE_FILES[:3], summaries, strict=False):
        assert line.startswith(f"{sample}: {expected_for(sample)['pathway']} (")
    assert summaries[-1] == "3 files: 3 assessed"


def test_assess_skips_expectations_and_pretty_prints(capsys: pytest.CaptureFixture[str]) -> None:
    sample = SAMPLE_FILES[0]
    expectation = sample.with_name(sample.stem + ".expected.json")
    assert main(["assess", str(sample), str(expectation), "--pretty"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["resourceType"] == "RiskAssessment" and out.startswith("{\n  ")
    assert err.splitlines()[-1] == "1 files: 1 assessed"


def test_assess_reads_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = SAMPLE_FILES[0]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(sample.read_bytes())))
    assert main(["assess", "-", "--as-of", expected_for(sample)["asOf"]]) == 0
    out, err = capsys.readouterr()
    assert summary(json.loads(out))["pathway"] == expected_for(sample)["pathway"]
    assert err.startswith("<stdin>: ")


def test_check_passes_over_every_sample(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["assess", "--check", *map(str, SAMPLES.glob("*.json"))]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1] == f"{len(SAMPLE_FILES)} files: {len(SAMPLE_FILES)} as expected"


def test_check_fails_on_a_difference_and_says_what(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = SAMPLE_FILES[0]
    copy = tmp_path / sample.name
    shutil.copy(sample, copy)
    actual = expected_for(sample)["pathway"]
    wrong = "evaluate-local-cause" if actual != "evaluate-local-cause" else "conservative-care"
    expected = {**expected_for(sample), "pathway": wrong}
    (tmp_path / (sample.stem + ".expected.json")).write_text(json.dumps(expected))
    lonely = tmp_path / "no-expectation.json"
    shutil.copy(sample, lonely)
    assert main(["assess", "--check", str(copy), str(lonely)]) == 1
    err = capsys.readouterr().err
    assert f"DIFFERENT: pathway {actual}, expected {wrong}" in err
    assert "no-expectation.json: no no-expectation.expected.json to check against" in err
    assert err.splitlines()[-1] == "2 files: 1 different, 1 without expectation"


def test_samples_lists_each_sample_with_its_pathway(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["samples"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(name, pathway) for name, pathway, _ in rows] == [
        (s.name, expected_for(s)["pathway"]) for s in SAMPLE_FILES
    ]


def test_assess_reports_a_bad_file_as_operation_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert main(["assess", str(bad)]) == 1
    assert json.loads(capsys.readouterr().out)["resourceType"] == "OperationOutcome"


def test_broken_knowledge_exits_2(knowledge_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (knowledge_copy / "rules.yaml").write_text("- id: X\n")
    assert main(["assess", str(SAMPLE_FILES[0]), "--knowledge-dir", str(knowledge_copy)]) == 2
    assert "rules.yaml" in capsys.readouterr().err
