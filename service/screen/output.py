"""Contract §5's output: RiskAssessment.ndjson, OperationOutcome.ndjson, manifest.json, summary.json.

The writer takes results already sorted by patient id and counts what it writes, so the summary
always agrees with the NDJSON, and the same export and asOf give the same bytes from any engine.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.screen.patient import OPERATION_OUTCOME, RISK_ASSESSMENT, Result

SUMMARY, MANIFEST = "summary.json", "manifest.json"


@dataclass(frozen=True)
class RunInfo:
    """What the output says about the run besides the patients."""

    transaction_time: str
    as_of: str
    knowledge_id: str
    knowledge_version: str
    pathways: Sequence[str]  # every pathway code, so a zero count is shown
    request: str | None = None
    lines_not_read: Mapping[str, int] = field(default_factory=dict)


def write_output(directory: Path, results: Iterable[Result], info: RunInfo) -> dict[str, Any]:
    """Write the four files (each whole or not at all) and return the summary."""
    directory.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    pathways: Counter[str] = Counter({code: 0 for code in info.pathways})
    conclusions: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    duplicates = 0
    previous = None
    with (
        _Atomic(directory / f"{RISK_ASSESSMENT}.ndjson") as assessed,
        _Atomic(directory / f"{OPERATION_OUTCOME}.ndjson") as failed,
    ):
        for result in results:
            if previous is not None and result.patient <= previous:
                raise ValueError("results must come sorted by patient id, each patient once")
            previous = result.patient
            (assessed if result.kind == RISK_ASSESSMENT else failed).write(result.line + "\n")
            counts[result.kind] += 1
            duplicates += result.tally.duplicates
            if result.tally.pathway is not None:
                pathways[result.tally.pathway] += 1
            conclusions.update(result.tally.conclusions)
            flags.update(result.tally.red_flags)
    summary = {
        "asOf": info.as_of,
        "transactionTime": info.transaction_time,
        "knowledgeBase": {"id": info.knowledge_id, "version": info.knowledge_version},
        "patients": counts[RISK_ASSESSMENT] + counts[OPERATION_OUTCOME],
        "assessed": counts[RISK_ASSESSMENT],
        "notAssessed": counts[OPERATION_OUTCOME],
        "duplicatesDropped": duplicates,
        "linesNotRead": dict(sorted(info.lines_not_read.items())),
        "pathways": dict(sorted(pathways.items())),
        "conclusions": dict(sorted(conclusions.items())),
        "redFlags": dict(sorted(flags.items())),
    }
    _write_json(directory / SUMMARY, summary)
    _write_json(directory / MANIFEST, _manifest(info, counts))
    return summary


def _manifest(info: RunInfo, counts: Mapping[str, int]) -> dict[str, Any]:
    """The Bulk Data manifest shape; OperationOutcomes go in `error`, as the spec has them."""
    return {
        "transactionTime": info.transaction_time,
        "request": info.request or "spinefoot screen",
        "requiresAccessToken": False,
        "output": [
            {"type": RISK_ASSESSMENT, "url": f"{RISK_ASSESSMENT}.ndjson", "count": counts[RISK_ASSESSMENT]}
        ],
        "error": [
            {
                "type": OPERATION_OUTCOME,
                "url": f"{OPERATION_OUTCOME}.ndjson",
                "count": counts[OPERATION_OUTCOME],
            }
        ],
    }


def _write_json(path: Path, document: dict[str, Any]) -> None:
    with _Atomic(path) as stream:
        stream.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


class _Atomic:
    """A text file written beside its name and renamed into place once complete."""

    def __init__(self, path: Path) -> None:
        self.path, self.partial = path, path.with_name(path.name + ".partial")

    def __enter__(self) -> Any:
        self.stream = self.partial.open("w", encoding="utf-8")
        return self.stream

    def __exit__(self, kind: object, *_: object) -> None:
        self.stream.close()
        if kind is None:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)
