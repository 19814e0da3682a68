"""`spinefoot assess` prints the same answer as the HTTP API; `spinefoot serve` runs gunicorn."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_runs_under_gunicorn_and_answers() -> None:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port",
         str(port), "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        sample = SAMPLE_FILES[0]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/fhir/RiskAssessment/$assess?asOf=2026-03-01T09:00:00Z",
            data=sample.read_bytes(), headers={"Content-Type": "application/fhir+json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
        assert summary(body)["pathway"] == expected_for(sample)["pathway"]
    finally:
        server.terminate()
        output = server.communicate(timeout=20)[0].decode()
    assert "gunicorn" in output.lower() or "Booting worker" in output
