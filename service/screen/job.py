"""One screening run as every engine receives it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.screen.export import Export
from service.screen.output import RunInfo


@dataclass(frozen=True)
class Job:
    export: Export
    out: Path
    workers: int
    info: RunInfo
    knowledge_dir: str | None  # None: the shipped knowledge base
    partition_bytes: int = 16 * 1024 * 1024  # of input per partition (local engine)

    def fingerprint(self) -> dict[str, Any]:
        """What must be the same for a stopped run's partitions to be reused."""
        files = [[str(f.path.resolve()), f.path.stat().st_size] for f in self.export.files]
        return {
            "files": files,
            "asOf": self.info.as_of,
            "partitionBytes": self.partition_bytes,
            "knowledge": [self.info.knowledge_id, self.info.knowledge_version],
        }
