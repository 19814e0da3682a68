"""Pass one of the local engine: split the export by patient into on-disk partitions.

Every line of a type the pipeline reads goes to partition `crc32(patient id) % count`, prefixed
with its patient and position, so pass two holds one partition in memory, never the export.
`classify` is shared with the Spark job, so both engines read the same lines the same way.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from service.assess.fhir import READ_TYPES
from service.screen.export import Export, lines
from service.screen.patient import Position, line_header, patient_key

NOT_JSON, NO_PATIENT = "not a JSON resource", "no Patient/<id> subject"
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def partition_count(export_bytes: int, partition_bytes: int) -> int:
    return max(1, -(-export_bytes // partition_bytes))


def partition_of(patient: str, count: int) -> int:
    """Stable across processes and machines (Python's own hash is salted per process)."""
    return zlib.crc32(patient.encode()) % count


def classify(text: bytes, file_type: str | None) -> tuple[str | None, str]:
    """(patient id, "") for a line to assess; (None, reason) for one that cannot be placed;
    (None, "") for a resource type the pipeline does not read."""
    if file_type is not None and file_type not in READ_TYPES:
        return None, ""
    try:
        resource = line_header(text)
    except (ValueError, RecursionError):  # not JSON, or nested past what a decoder follows
        return None, NOT_JSON
    if resource is None:
        return None, NOT_JSON
    if resource.get("resourceType") not in READ_TYPES:
        return None, ""
    patient = patient_key(resource)
    if patient is None or not _FHIR_ID.fullmatch(patient):
        return None, NO_PATIENT
    return patient, ""


def split(export: Export, directory: Path, count: int) -> Counter[str]:
    """Write `part-NNNNN.ndjson` files; returns the lines that could not be placed, by reason."""
    directory.mkdir(parents=True, exist_ok=True)
    not_placed: Counter[str] = Counter()
    with ExitStack() as stack:
        outs: list[IO[bytes]] = [
            stack.enter_context(partition_path(directory, i).open("wb")) for i in range(count)
        ]
        for file_index, file in enumerate(export.read_files()):
            for line_index, text in enumerate(lines(file)):
                patient, reason = classify(text, file.type)
                if patient is None:
                    not_placed.update([reason] if reason else [])
                    continue
                outs[partition_of(patient, count)].write(
                    b"%s\t%d\t%d\t%s\n" % (patient.encode(), file_index, line_index, text)
                )
    return not_placed


def read_partition(path: Path) -> dict[str, list[tuple[Position, bytes]]]:
    """One partition's lines grouped by patient."""
    patients: dict[str, list[tuple[Position, bytes]]] = {}
    with path.open("rb") as stream:
        for row in stream:
            patient, file_index, line_index, text = row.rstrip(b"\n").split(b"\t", 3)
            patients.setdefault(patient.decode(), []).append(((int(file_index), int(line_index)), text))
    return patients


def partition_path(directory: Path, index: int) -> Path:
    return directory / f"part-{index:05d}.ndjson"


def partition_paths(directory: Path, count: int) -> Iterator[Path]:
    return (partition_path(directory, i) for i in range(count))
