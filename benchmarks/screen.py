"""`spinefoot screen` on generated populations: patients/s and peak RSS, local and spark, 1 and
2 workers, against the pipeline's own cost per patient, which the local engine's workers
measure during the same run (`python -m benchmarks.screen`, ~5 minutes).

Writes its own section of docs/performance.md (between the markers below); `sh benchmarks/run`
keeps that section. Each run is a fresh `spinefoot screen` process; its peak memory is the largest
sum of resident memory over its whole process tree (pool workers, Spark's JVM), sampled.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bundles import ROOT

REPORT = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- screen: benchmarks/screen.py -->", "<!-- /screen -->"
AS_OF = "2026-03-01T09:00:00Z"
SAMPLES = sorted(p for p in (ROOT / "fhir_samples").glob("*.json") if not p.name.endswith(".expected.json"))
SYNTHEA = ROOT / "tests" / "data" / "realworld" / "synthea"
FILLER = 15  # Synthea resources per generated patient, besides its clinical findings
RUNS = (("local", 1), ("local", 2), ("spark", 1), ("spark", 2))


def population(count: int, folder: Path) -> Path:
    """`count` patients, each a sample's clinical resources (dates varied) plus Synthea filler
    (vital signs, labs, encounters, conditions), as one NDJSON file per type and a manifest."""
    rng = random.Random(count)
    clinical = [_bundle(p)["entry"] for p in SAMPLES]
    filler = [
        e["resource"]
        for p in sorted(SYNTHEA.glob("*/*.json"), key=lambda p: p.name)[:3]
        for e in json.loads(p.read_bytes())["entry"]
        if e["resource"]["resourceType"] in ("Observation", "Condition", "Encounter")
    ]
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    try:
        for n in range(count):
            pid = f"bench-{n:07d}"
            resources = [
                {
                    "resourceType": "Patient",
                    "id": pid,
                    "birthDate": f"{rng.randint(1930, 2005)}-0{rng.randint(1, 9)}-15",
                }
            ]
            resources += [
                e["resource"]
                for e in rng.choice(clinical)
                if e["resource"]["resourceType"] not in ("Patient", "Encounter")
            ]
            resources += rng.sample(filler, FILLER)
            for i, item in enumerate(resources[1:]):
                _write(files, folder, _repointed(item, pid, i, rng))
            _write(files, folder, resources[0])
    finally:
        for stream in files.values():
            stream.close()
    (folder / "manifest.json").write_text(
        json.dumps(
            {
                "transactionTime": AS_OF,
                "request": "generated",
                "requiresAccessToken": False,
                "output": [{"type": t, "url": f"{t}.ndjson"} for t in sorted(files)],
            }
        )
    )
    return folder


def _bundle(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    if document["resourceType"] == "Parameters":
        bundle: dict[str, Any] = next(p["resource"] for p in document["parameter"] if p["name"] == "bundle")
        return bundle
    return document


def _repointed(template: dict[str, Any], pid: str, index: int, rng: random.Random) -> dict[str, Any]:
    item = copy.deepcopy(template)
    item["id"] = f"{pid}-{index}"
    for key in ("subject", "patient"):
        if key in item:
            item[key] = {"reference": f"Patient/{pid}"}
    if "onsetDateTime" in item and rng.random() < 0.5:
        item["onsetDateTime"] = f"2025-{rng.randint(1, 12):02d}-15"
    item.pop("encounter", None)
    return item


def _write(files: dict[str, Any], folder: Path, item: dict[str, Any]) -> None:
    rtype = item["resourceType"]
    if rtype not in files:
        files[rtype] = (folder / f"{rtype}.ndjson").open("w")
    files[rtype].write(json.dumps(item) + "\n")


def measured(command: Sequence[str]) -> tuple[float, float, float | None]:
    """(wall seconds, peak MiB resident in the whole process tree, seconds in the pipeline
    itself) of one command: the main process, its pool workers, or Spark's JVM and Python
    workers, sampled every 0.1 s. The pipeline's seconds are what the local engine's workers
    measured during the same run and logged (None for Spark, whose log does not say)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        peak = 0
        while process.poll() is None:
            peak = max(peak, _tree_rss_kib(process.pid))
            time.sleep(0.1)
        seconds = time.perf_counter() - started
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
    if process.returncode:
        raise RuntimeError(f"{command[3:5]} exited {process.returncode}: {text[-2000:]}")
    found = _PIPELINE_LOG.search(text)
    return seconds, peak / 1024, float(found.group(1)) if found else None


_PIPELINE_LOG = re.compile(r"screen: assessed \d+ patients in [\d.]+ s; pipeline ([\d.]+) s")


def _tree_rss_kib(root: int) -> int:
    """Resident KiB of `root` and every descendant, from /proc (Linux)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:  # the process ended meanwhile
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            parents[int(entry.name)] = int(fields["PPid"])
            rss[int(entry.name)] = int(fields.get("VmRSS", "0 kB").split()[0])
    tree, frontier = {root}, [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        tree.update(children)
        frontier = children
    return sum(rss.get(pid, 0) for pid in tree)


def screen_command(export: Path, out: Path, engine: str, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "service.cli",
        "screen",
        str(export),
        "--out",
        str(out),
        "--engine",
        engine,
        "--workers",
        str(workers),
        "--as-of",
        AS_OF,
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--no-write", action="store_true", help="print, do not update the doc")
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows, rss, rates, costs = [], {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            export = population(size, Path(tmp) / f"export-{size}")
            megabytes = sum(p.stat().st_size for p in export.glob("*.ndjson")) / 2**20
            for engine, workers in RUNS:
                run = (size, engine, workers)
                seconds, peak, pipeline = measured(screen_command(export, Path(tmp) / "out", engine, workers))
                rates[run], rss[run] = size / seconds, peak
                costs[run] = pipeline / size if pipeline is not None else None
                in_pipeline = f"{pipeline / size * 1000:.2f}" if pipeline is not None else "–"
                rows.append(
                    f"| {size:,} ({megabytes:,.0f} MiB) | {engine} | {workers} | "
                    f"{seconds:,.1f} | {size / seconds:,.1f} | {in_pipeline} | {peak:,.0f} |"
                )
    section = _section(rows, costs, rates, rss, args.sizes, time.monotonic() - started)
    print(section)
    if not args.no_write:
        REPORT.write_text(without_section(REPORT.read_text()) + section)


def _section(
    rows: list[str],
    costs: dict[tuple[int, str, int], float | None],
    rates: dict[tuple[int, str, int], float],
    rss: dict[tuple[int, str, int], float],
    sizes: Sequence[int],
    seconds: float,
) -> str:
    small, large = sizes[0], sizes[-1]
    cost = costs[(large, "local", 1)] or float("nan")
    overhead = (1 / rates[(large, "local", 1)]) / cost - 1
    drift = rss[(large, "local", 2)] / rss[(small, "local", 2)] - 1
    scaling = rates[(large, "local", 2)] / rates[(large, "local", 1)]
    spark_scaling = rates[(large, "spark", 2)] / rates[(large, "spark", 1)]
    targets = [
        (
            f"peak RSS of `local` flat (±20 %) from {small:,} to {large:,} patients",
            f"{rss[(small, 'local', 2)]:.0f} → {rss[(large, 'local', 2)]:.0f} MiB ({drift:+.0%})",
            abs(drift) <= 0.20,
        ),
        (
            "`local`, 1 worker: time per patient ≤ 1.3 × the pipeline's (overhead ≤ 30 %)",
            f"{1000 / rates[(large, 'local', 1)]:.2f} vs {cost * 1000:.2f} ms in the pipeline "
            f"({overhead:+.0%})",
            overhead <= 0.30,
        ),
    ]
    lines = [
        f"\n{BEGIN}\n## Population screening (`spinefoot screen`)\n",
        f"Measured {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC on the machine above; "
        f"load average (1/5/15 min) at the end {' / '.join(f'{x:.2f}' for x in os.getloadavg())}.\n",
        f"`python -m benchmarks.screen` (about {seconds / 60:.0f} minutes): generated patients "
        f"(a sample's clinical resources plus {FILLER} Synthea resources each, one NDJSON file per "
        "type), each run a fresh `spinefoot screen` process. Peak RSS is the largest sum over "
        "its whole process tree (main process and pool workers, or driver, Spark's JVM and its "
        "Python workers), sampled every 0.1 s. *Pipeline* is the time the local engine's "
        "workers spent in the pipeline itself (`Pipeline.assess_body` on each patient's Bundle, "
        "what `$assess` runs in process), measured and logged by the workers during the same "
        "run; the rest of the run's time is the engine's overhead: start-up, the split, "
        "reading partitions, building each patient's Bundle, writing and merging the results.\n",
        "| Patients (export) | Engine | Workers | Seconds | Patients/s | Pipeline, ms/patient "
        "| Peak RSS, MiB |",
        "|---:|---|---:|---:|---:|---:|---:|",
        *rows,
        f"\nScaling from 1 to 2 workers at {large:,} patients: local {scaling:.2f} ×, "
        f"spark {spark_scaling:.2f} × (2 cores, shared with the benchmark's parent).\n",
        "| Target | Measured | |",
        "|---|---|---|",
        *[f"| {t} | {m} | {'met' if ok else '**not met**'} |" for t, m, ok in targets],
        f"\n{END}\n",
    ]
    return "\n".join(lines)


def without_section(text: str) -> str:
    """The document without this benchmark's section (to replace it, or to keep it aside)."""
    if BEGIN not in text:
        return text
    head, rest = text.split(BEGIN, 1)
    return head.rstrip("\n") + "\n" + rest.split(END, 1)[1].lstrip("\n") if END in rest else head


def section_of(text: str) -> str:
    """This benchmark's section of the document, or nothing."""
    if BEGIN not in text or END not in text:
        return ""
    return "\n" + BEGIN + text.split(BEGIN, 1)[1].split(END, 1)[0] + END + "\n"


if __name__ == "__main__":
    main()
