"""`spinefoot assess` prints the same answer as the HTTP API (serving is in test_server.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli import main
from tests.conftest import SAMPLE_FILES, expected_for, summary


def test_assess_prints_the_risk_assessment(capsys: pytest.CaptureFixture[str]) -> None:
    sample = SAMPLE_FILES[0]
    exp = expected_for(sample)
    assert main(["assess", str(sample), "--as-of", exp["asOf"]]) == 0
    resource = json.loads(capsys.readouterr().out)
    assert summary(resource) == {"pathway": exp["pathway"], "predictions": exp["predictions"]}


def test_assess_several_files_prints_one_line_each(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["assess", *map(str, SAMPLE_FILES[:3]), "--as-of", "2026-03-01T09:00:00Z"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["resourceType"] for line in lines] == ["RiskAssessment"] * 3


def test_assess_reports_a_bad_file_as_operation_outcome(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert main(["assess", str(bad)]) == 1
    assert json.loads(capsys.readouterr().out)["resourceType"] == "OperationOutcome"


def test_broken_knowledge_exits_2(knowledge_copy: Path, capsys: pytest.CaptureFixture[str]
                                  ) -> None:
    (knowledge_copy / "rules.yaml").write_text("- id: X\n")
    assert main(["assess", str(SAMPLE_FILES[0]), "--knowledge-dir", str(knowledge_copy)]) == 2
    assert "rules.yaml" in capsys.readouterr().err
