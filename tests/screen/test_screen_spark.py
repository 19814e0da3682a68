"""`spinefoot screen --engine spark` for real: a local[2] Spark session on the samples,
the Synthea patients and 18 generated ones gives the
local engine's bytes (which test_screen.py holds to `$assess`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli import main
from tests.support.export import generated_patients, sample_patients, synthea_patients, write_export

pytestmark = pytest.mark.slow  # a local Spark session

AS_OF = "2026-03-01T09:00:00Z"


def test_spark_gives_the_local_engines_bytes(tmp_path: Path) -> None:
    patients = sample_patients() + synthea_patients() + generated_patients(18)
    export = write_export(tmp_path / "export", patients)
    with (export / "Observation.ndjson").open("a") as stream:  # counted alike by both engines
        stream.write(json.dumps(patients[0][1]) + "\n{not json\n")
    outs = {engine: tmp_path / engine for engine in ("local", "spark")}
    for engine, workers in (("local", "1"), ("spark", "2")):
        assert (
            main(
                [
                    "screen",
                    str(export),
                    "--out",
                    str(outs[engine]),
                    "--engine",
                    engine,
                    "--workers",
                    workers,
                    "--as-of",
                    AS_OF,
                ]
            )
            == 0
        )
    for name in ("RiskAssessment.ndjson", "OperationOutcome.ndjson", "manifest.json", "summary.json"):
        assert (outs["spark"] / name).read_bytes() == (outs["local"] / name).read_bytes(), name
    summary = json.loads((outs["spark"] / "summary.json").read_text())
    assert (summary["patients"], summary["duplicatesDropped"]) == (len(patients), 1)
    assert summary["linesNotRead"] == {"not a JSON resource": 1}
    assert sorted(p.name for p in outs["spark"].iterdir()) == [
        "OperationOutcome.ndjson",
        "RiskAssessment.ndjson",
        "manifest.json",
        "summary.json",
    ]
