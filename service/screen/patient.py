"""The per-patient module every engine shares: patient key, bundle, assessment, output line.

An engine only has to bring each patient's export lines together, in export order; everything
that decides an answer is here, so `local` and `spark` give the same bytes. The pipeline is
built once per worker process (`assessor`): durable-rules wants one process per worker and one
thread each (../shared/design/durable-rules.md).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import msgspec

from service.assess.dates import parse_instant
from service.assess.parse import decode_json
from service.assess.pipeline import Pipeline
from service.errors import Issue, SpinefootError
from service.knowledge import load_knowledge
from service.outcome import operation_outcome

log = logging.getLogger("spinefoot.screen")

RISK_ASSESSMENT, OPERATION_OUTCOME = "RiskAssessment", "OperationOutcome"
NERVE_ROOT = "http://spinefoot.org/fhir/CodeSystem/nerve-root"
# Contract §3's red-flag conclusions, by their SNOMED outcome code.
RED_FLAG_OUTCOMES = frozenset({"192970008", "94602001", "203241002", "125608002"})

# (file index, line index): where a line is in the export; sorting by it restores export order.
Position = tuple[int, int]


@dataclass(frozen=True)
class Tally:
    """What summary.json counts for one patient, read back from its output resource."""

    pathway: str | None  # None: not assessed
    conclusions: tuple[str, ...]
    red_flags: tuple[str, ...]
    duplicates: int


@dataclass(frozen=True)
class Result:
    patient: str
    kind: str  # RiskAssessment | OperationOutcome
    line: str  # the output resource as one JSON line
    tally: Tally

    def encode(self) -> str:
        """One line of a partition's results file (the tab never occurs in compact JSON)."""
        head = [
            self.patient,
            self.kind,
            self.tally.pathway,
            list(self.tally.conclusions),
            list(self.tally.red_flags),
            self.tally.duplicates,
        ]
        return json.dumps(head, separators=(",", ":")) + "\t" + self.line

    @classmethod
    def decode(cls, text: str) -> Result:
        head, line = text.rstrip("\n").split("\t", 1)
        patient, kind, pathway, conclusions, flags, duplicates = json.loads(head)
        return cls(patient, kind, line, Tally(pathway, tuple(conclusions), tuple(flags), duplicates))


def patient_key(resource: dict[str, Any]) -> str | None:
    """The id of the patient a resource belongs to: its own id for a Patient, else its
    `subject`/`patient` reference `Patient/<id>` (relative or absolute)."""
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) and rid else None
    for field in ("subject", "patient"):
        reference = resource.get(field)
        text = reference.get("reference") if isinstance(reference, dict) else None
        if isinstance(text, str):
            parts = text.rstrip("/").split("/")
            if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
                return parts[-1]
    return None


class _Header(msgspec.Struct):
    """What the engines look at in an export line; msgspec skips every other member."""

    resourceType: Any = msgspec.UNSET  # noqa: N815 (FHIR's names)
    id: Any = msgspec.UNSET
    subject: Any = msgspec.UNSET
    patient: Any = msgspec.UNSET


_HEADER = msgspec.json.Decoder(_Header)
_HEADER_FIELDS = _Header.__struct_fields__


def line_header(text: bytes) -> dict[str, Any] | None:
    """The line's resourceType, id, subject and patient, as `json.loads` reads them, or None
    when the line is not a JSON object; ValueError when it is not JSON. Only an ASCII line is
    skimmed (msgspec does not check the bytes of the strings it skips); msgspec refuses what
    the standard library reads leniently (NaN, an unpaired surrogate), which goes to the full
    decode, as does every line that is not ASCII."""
    if text.isascii():
        try:
            header = _HEADER.decode(text)
        except msgspec.DecodeError:
            pass
        else:
            return {n: v for n in _HEADER_FIELDS if (v := getattr(header, n)) is not msgspec.UNSET}
    resource = decode_json(text)
    return {n: resource[n] for n in _HEADER_FIELDS if n in resource} if isinstance(resource, dict) else None


def patient_body(lines: Iterable[tuple[Position, bytes]]) -> tuple[bytes, int]:
    """A collection Bundle (JSON) of one patient's export lines in export order, and how many
    duplicates by (type, id) were dropped (the first copy is kept). Each line is one JSON
    object (the engines place no other), so the lines are joined as they are: the pipeline
    skims what it does not read, as it does for `$assess`. Entries have no fullUrl, so
    references and `basis` read `Type/<id>` (contract §5)."""
    seen: set[tuple[str, str]] = set()
    entries, duplicates = [], 0
    for _, text in sorted(lines, key=lambda item: item[0]):
        header = line_header(text) or {}
        if header.get("id") is not None:
            key = (str(header.get("resourceType")), str(header["id"]))
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
        entries.append(b'{"resource":%s}' % text)
    return b'{"resourceType":"Bundle","type":"collection","entry":[%s]}' % b",".join(entries), duplicates


class PatientAssessor:
    """One worker process's pipeline and evaluation instant, and the time spent in the
    pipeline itself (engines log it beside their wall time: the rest is their overhead)."""

    def __init__(self, pipeline: Pipeline, as_of: datetime) -> None:
        self.pipeline, self.as_of = pipeline, as_of
        self.pipeline_seconds = 0.0

    def assess(self, patient: str, lines: Iterable[tuple[Position, bytes]]) -> Result:
        """Never raises for one patient's data: what cannot be assessed is an OperationOutcome
        naming the patient, so one patient never stops a run."""
        body, duplicates = patient_body(lines)
        started = time.perf_counter()
        try:
            resource = self.pipeline.assess_body(body, None, self._as_of).resource
        except SpinefootError as exc:
            return _not_assessed(patient, exc.issues, duplicates)
        except Exception as exc:  # a defect: reported per patient, logged without patient data
            log.error("screen: unexpected %s assessing a patient", type(exc).__name__)
            return _not_assessed(patient, [Issue("exception", "unexpected error; see the log")], duplicates)
        finally:
            self.pipeline_seconds += time.perf_counter() - started
        return Result(patient, RISK_ASSESSMENT, output_line(resource), tally(resource, duplicates))

    def _as_of(self) -> datetime:
        """The run's instant, as the pipeline asks for an instant the body does not give."""
        return self.as_of


def output_line(resource: dict[str, Any]) -> str:
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":"))


def tally(resource: dict[str, Any], duplicates: int = 0) -> Tally:
    """Pathway, conclusions (`display[, root]`) and red flags of one RiskAssessment."""
    pathway = resource["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
    conclusions, flags = [], []
    for prediction in resource.get("prediction", []):
        codings = prediction["outcome"]["coding"]
        roots = [c["code"] for c in codings if c["system"] == NERVE_ROOT]
        conclusions.append(codings[0]["display"] + "".join(f", {r}" for r in roots))
        if codings[0]["code"] in RED_FLAG_OUTCOMES:
            flags.append(codings[0]["display"])
    return Tally(pathway, tuple(sorted(set(conclusions))), tuple(sorted(set(flags))), duplicates)


def _not_assessed(patient: str, issues: list[Issue], duplicates: int) -> Result:
    named = [Issue("processing", f"Patient/{patient} could not be assessed", "Patient")]
    return Result(
        patient,
        OPERATION_OUTCOME,
        output_line(operation_outcome(named + issues)),
        Tally(None, (), (), duplicates),
    )


@cache
def assessor(knowledge_dir: str | None, as_of: str) -> PatientAssessor:
    """Built once per process (per knowledge base and asOf), on first use in that process."""
    kb = load_knowledge(Path(knowledge_dir) if knowledge_dir else None)
    return PatientAssessor(Pipeline(kb), parse_instant(as_of))
