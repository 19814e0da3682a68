"""`spinefoot screen` with the local engine: the same answers as `$assess`, whatever the workers.

The export is the shipped samples and the Synthea patients of tests/data, written as a Bulk Data
server would (tests/support/export.py). Spark is in test_screen_spark.py, the Bulk Data client in
test_screen_bulk.py.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from service.assess.report import note_kind
from service.cli import main
from service.screen.patient import NERVE_ROOT, RED_FLAG_OUTCOMES
from tests.support.assess import expected_for, post_bundle
from tests.support.export import (
    TRANSACTION_TIME,
    as_bundle,
    generated_patients,
    sample_patients,
    synthea_patients,
    write_export,
)
from tests.support.paths import SAMPLE_FILES

pytestmark = pytest.mark.slow  # screening runs as separate processes

AS_OF = "2026-03-01T09:00:00Z"
OUTPUTS = ("RiskAssessment.ndjson", "OperationOutcome.ndjson", "manifest.json", "summary.json")


@pytest.fixture(scope="module")
def patients() -> list[list[dict[str, Any]]]:
    return sample_patients() + synthea_patients()


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory, patients: list[list[dict[str, Any]]]) -> Path:
    return write_export(tmp_path_factory.mktemp("export"), patients)


@pytest.fixture(scope="module")
def screened(tmp_path_factory: pytest.TempPathFactory, export: Path) -> dict[int, Path]:
    """The export screened with 1 and with 2 workers (the second in small partitions)."""
    runs = {}
    for workers, partition_mb in ((1, "16"), (2, "0.5")):
        out = tmp_path_factory.mktemp(f"out{workers}")
        assert (
            main(
                [
                    "screen",
                    str(export),
                    "--out",
                    str(out),
                    "--workers",
                    str(workers),
                    "--as-of",
                    AS_OF,
                    "--partition-mb",
                    partition_mb,
                ]
            )
            == 0
        )
        runs[workers] = out
    return runs


def lines(out: Path, name: str = "RiskAssessment.ndjson") -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / name).read_text().splitlines()]


def comparable(resource: dict[str, Any]) -> dict[str, Any]:
    """Minus what legitimately differs: the note naming types not read (screen reads only the
    pipeline's types from an export), and the order of input notes (export order is by type)."""
    notes = [
        n
        for n in resource["note"]
        if not (note_kind(n) == "input-ignored" and n["text"].startswith("Not read"))
    ]
    inputs = sorted((n for n in notes if note_kind(n) == "input-ignored"), key=lambda n: n["text"])
    return {**resource, "note": [n for n in notes if note_kind(n) != "input-ignored"] + inputs}


def test_each_patient_gets_what_assess_gives(
    screened: dict[int, Path], client: FlaskClient, patients: list[list[dict[str, Any]]]
) -> None:
    by_subject = {r["subject"]["reference"]: r for r in lines(screened[1])}
    assert len(by_subject) == len(patients) == len(SAMPLE_FILES) + 12  # the samples and Synthea
    for resources in patients:
        expected = post_bundle(client, as_bundle(resources), AS_OF).get_json()
        assert comparable(by_subject[expected["subject"]["reference"]]) == comparable(expected)


def test_the_same_bytes_whatever_the_workers_and_partitions(screened: dict[int, Path]) -> None:
    for name in OUTPUTS:
        assert (screened[1] / name).read_bytes() == (screened[2] / name).read_bytes(), name


def test_lines_are_sorted_by_patient_and_the_manifest_counts_them(screened: dict[int, Path]) -> None:
    subjects = [r["subject"]["reference"] for r in lines(screened[1])]
    assert subjects == sorted(subjects)
    manifest = json.loads((screened[1] / "manifest.json").read_text())
    assert manifest["transactionTime"] == TRANSACTION_TIME
    assert manifest["output"] == [
        {"type": "RiskAssessment", "url": "RiskAssessment.ndjson", "count": len(SAMPLE_FILES) + 12}
    ]
    assert manifest["error"][0]["count"] == 0
    assert not (screened[1] / ".screen-work").exists()


def test_the_summary_equals_a_recount_of_the_ndjson(screened: dict[int, Path]) -> None:
    summary = json.loads((screened[1] / "summary.json").read_text())
    pathways: Counter[str] = Counter()
    conclusions: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    for resource in lines(screened[1]):
        pathways[resource["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]] += 1
        found = set()
        for prediction in resource.get("prediction", []):
            codings = prediction["outcome"]["coding"]
            root = [c["code"] for c in codings if c["system"] == NERVE_ROOT]
            found.add(codings[0]["display"] + (f", {root[0]}" if root else ""))
            if codings[0]["code"] in RED_FLAG_OUTCOMES:
                flags[codings[0]["display"]] += 1
        conclusions.update(found)
    assert {k: v for k, v in summary["pathways"].items() if v} == dict(pathways)
    assert summary["conclusions"] == dict(conclusions)
    assert summary["redFlags"] == dict(flags)
    expected_ces = sum(
        any(p["outcome"] == "192970008" for p in expected_for(f)["predictions"]) for f in SAMPLE_FILES
    )  # the Synthea patients have none
    assert summary["redFlags"]["Cauda equina syndrome"] == expected_ces > 0
    everyone = len(SAMPLE_FILES) + 12
    assert (summary["asOf"], summary["patients"], summary["assessed"]) == (AS_OF, everyone, everyone)
    assert summary["knowledgeBase"]["id"] == "spinefoot-back-foot"


def test_gzip_files_a_manifest_or_loose_files_read_alike(
    tmp_path: Path, screened: dict[int, Path], patients: list[list[dict[str, Any]]]
) -> None:
    gz = write_export(tmp_path / "gz", patients[:8], gz=True)
    out = tmp_path / "out"
    assert main(["screen", str(gz / "manifest.json"), "--out", str(out), "--as-of", AS_OF]) == 0
    loose = write_export(tmp_path / "loose", patients[:8], manifest=False)
    out2 = tmp_path / "out2"
    assert (
        main(["screen", *map(str, sorted(loose.glob("*.ndjson"))), "--out", str(out2), "--as-of", AS_OF]) == 0
    )
    full = {r["subject"]["reference"]: r for r in lines(screened[1])}
    assert len(lines(out)) == 8
    assert lines(out) == lines(out2) == [full[r["subject"]["reference"]] for r in lines(out)]


def test_duplicates_bad_lines_and_an_unassessable_patient_never_stop_the_run(
    tmp_path: Path, patients: list[list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    invalid = [
        {"resourceType": "Patient", "id": "x1"},
        {**patients[3][1], "id": "x1-obs", "subject": {"reference": "Patient/x1"}, "status": "bogus"},
    ]
    export = write_export(tmp_path / "export", patients[:3] + [invalid])
    with (export / "Condition.ndjson").open("a") as stream:  # a duplicate, a broken line
        stream.write(json.dumps(patients[0][1]) + "\n{not json\n")
    out = tmp_path / "out"
    assert main(["screen", str(export), "--out", str(out)]) == 0  # asOf: transactionTime
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["patients"], summary["assessed"], summary["notAssessed"]) == (4, 3, 1)
    assert summary["duplicatesDropped"] == 1 and summary["asOf"] == TRANSACTION_TIME
    assert summary["linesNotRead"] == {"not a JSON resource": 1}
    [outcome] = lines(out, "OperationOutcome.ndjson")
    assert outcome["issue"][0]["diagnostics"] == "Patient/x1 could not be assessed"
    assert outcome["issue"][1]["expression"][0].endswith(".status")
    assert "4 patients, 3 assessed, 1 not assessed" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,message",
    [
        (["missing-folder"], "not a folder"),
        ([], "give an export"),
    ],
    ids=["missing", "nothing"],
)
def test_an_unusable_export_exits_2(
    tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["screen", *[str(tmp_path / a) for a in args], "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_without_manifest_or_as_of_it_asks_for_as_of(
    tmp_path: Path, patients: list[list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    loose = write_export(tmp_path / "loose", patients[:1], manifest=False)
    assert main(["screen", str(loose), "--out", str(tmp_path / "out")]) == 2
    assert "--as-of" in capsys.readouterr().err


def test_ctrl_c_stops_cleanly_and_resume_finishes_without_redoing(tmp_path: Path) -> None:
    export = write_export(tmp_path / "export", generated_patients(120))
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "service.cli",
        "screen",
        str(export),
        "--out",
        str(out),
        "--workers",
        "1",
        "--as-of",
        AS_OF,
        "--partition-mb",
        "0.1",
    ]
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, start_new_session=True
    )  # its own group, as a terminal's job
    results = out / ".screen-work" / "results"
    deadline = time.monotonic() + 120
    while not (results.is_dir() and any(results.glob("*.ndjson"))):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "--resume" in err and "Traceback" not in err
    finished = sorted(p.name for p in results.glob("*.ndjson"))
    total = json.loads((out / ".screen-work" / "state.json").read_text())["partitions"]
    assert 0 < len(finished) < total and not (out / "summary.json").exists()
    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(finished) + 1}/{total} partitions" in resumed.stderr  # the first one it did
    fresh = tmp_path / "fresh"
    assert main(["screen", str(export), "--out", str(fresh), "--as-of", AS_OF]) == 0
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (fresh / name).read_bytes(), name


def test_resume_refuses_another_run(
    tmp_path: Path, patients: list[list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    export = write_export(tmp_path / "export", patients[:2])
    work = tmp_path / "out" / ".screen-work"
    work.mkdir(parents=True)
    (work / "state.json").write_text(json.dumps({"fingerprint": {}, "partitions": 1, "linesNotRead": {}}))
    assert main(["screen", str(export), "--out", str(tmp_path / "out"), "--resume"]) == 2
    assert "another export" in capsys.readouterr().err


def test_gzip_is_read_by_content(tmp_path: Path) -> None:
    """A .gz file is decompressed; anything named after a type not read is never opened."""
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "Patient.ndjson.gz").write_bytes(gzip.compress(b'{"resourceType": "Patient", "id": "z"}\n'))
    (folder / "Encounter.ndjson").write_bytes(b"\xff not even text\n")
    out = tmp_path / "out"
    assert main(["screen", str(folder), "--out", str(out), "--as-of", AS_OF]) == 0
    [resource] = lines(out)
    assert resource["subject"] == {"reference": "Patient/z"}
