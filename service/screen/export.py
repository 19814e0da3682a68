"""A Bulk Data export on disk: which files, which resource types, and its transactionTime.

An export is given as folders (with or without a `manifest.json`), manifests, or NDJSON files
(`*.ndjson`, `*.ndjson.gz`). Files are read in a fixed order (manifest order, else sorted
names), so every engine sees the same lines in the same order.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from service.assess.fhir import READ_TYPES

MANIFEST = "manifest.json"
_SUFFIXES = (".ndjson", ".ndjson.gz")
_TYPE_PREFIX = re.compile(r"[A-Z][A-Za-z]+")


class ExportError(Exception):
    """The export cannot be read at all (missing file, bad manifest): the run cannot start."""


@dataclass(frozen=True)
class ExportFile:
    path: Path
    type: str | None  # the one resource type it holds, or None when mixed or unknown


@dataclass(frozen=True)
class Export:
    files: tuple[ExportFile, ...]
    transaction_time: str | None  # the latest manifest's; None without a manifest
    request: str | None  # the kick-off URL the export answered, when a manifest says it
    by_patient: bool  # `organizeOutputBy=Patient`: files hold blocks, each opened by a Patient

    def read_files(self) -> tuple[ExportFile, ...]:
        """The files that may hold a resource type the pipeline reads."""
        return tuple(f for f in self.files if f.type is None or f.type in READ_TYPES)

    def size(self) -> int:
        return sum(f.path.stat().st_size for f in self.read_files())


def open_export(paths: Sequence[Path]) -> Export:
    files: list[ExportFile] = []
    times: list[str] = []
    requests: list[str] = []
    by_patient = False
    for path in paths:
        manifest = path / MANIFEST if path.is_dir() else path
        if manifest.name == MANIFEST and manifest.is_file():
            document = _read_manifest(manifest)
            files += _manifest_files(manifest, document)
            times += [document["transactionTime"]] if document.get("transactionTime") else []
            requests += [document["request"]] if document.get("request") else []
            by_patient |= document.get("outputOrganizedBy") == "Patient"
        elif path.is_dir():
            files += [_file(p) for p in sorted(path.iterdir()) if p.name.endswith(_SUFFIXES)]
        elif path.is_file() and path.name.endswith(_SUFFIXES):
            files.append(_file(path))
        else:
            raise ExportError(f"{path}: not a folder, a manifest.json or an .ndjson[.gz] file")
    if not files:
        raise ExportError("no .ndjson or .ndjson.gz file in the export")
    return Export(tuple(files), max(times) if times else None, requests[0] if requests else None, by_patient)


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path}: not a readable JSON manifest ({type(exc).__name__})") from None
    if not isinstance(document, dict) or not isinstance(document.get("output"), list):
        raise ExportError(f"{path}: a Bulk Data manifest needs an 'output' list")
    return document


def _manifest_files(manifest: Path, document: dict[str, Any]) -> list[ExportFile]:
    """Each output item's file, found beside the manifest by the last segment of its URL."""
    found = []
    for i, item in enumerate(document["output"]):
        url = item.get("url") if isinstance(item, dict) else None
        if not isinstance(url, str):
            raise ExportError(f"{manifest}: output[{i}] has no url")
        path = manifest.parent / url.rstrip("/").rsplit("/", 1)[-1]
        if not path.is_file():
            raise ExportError(f"{manifest}: output[{i}]: {path.name} is not beside the manifest")
        rtype = item.get("type")
        found.append(ExportFile(path, rtype if isinstance(rtype, str) else None))
    return found


def _file(path: Path) -> ExportFile:
    """`Observation.ndjson`, `Observation.2.ndjson.gz`, `Observation-001.ndjson` hold Observations;
    a name that is not a resource type holds anything."""
    match = _TYPE_PREFIX.match(path.name)
    return ExportFile(path, match.group(0) if match and match.group(0) in _KNOWN_TYPES else None)


def lines(file: ExportFile) -> Iterator[bytes]:
    """The file's non-blank lines, decompressed when it ends in .gz."""
    with _open(file.path) as stream:
        for line in stream:
            if line.strip():
                yield line.rstrip(b"\r\n")


def _open(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]  # GzipFile is a binary IO
    return path.open("rb")


# Resource types a Bulk Data export commonly names its files after; a file named after one the
# pipeline does not read is skipped unopened.
_KNOWN_TYPES = READ_TYPES | frozenset(
    {
        "AllergyIntolerance",
        "CarePlan",
        "CareTeam",
        "Claim",
        "Device",
        "DiagnosticReport",
        "DocumentReference",
        "Encounter",
        "ExplanationOfBenefit",
        "Group",
        "ImagingStudy",
        "Immunization",
        "Location",
        "Medication",
        "MedicationAdministration",
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "Provenance",
        "ServiceRequest",
        "SupplyDelivery",
    }
)
