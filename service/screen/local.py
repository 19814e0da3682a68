"""The `local` engine: split by patient on disk, then assess partition by partition in a process
pool (one process per worker, one thread each), and merge the sorted partition results.

Work lives in `OUT/.screen-work/`: `state.json` (what the run is), `partitions/`, and one
`results/part-NNNNN.ndjson` per finished partition, renamed into place whole. `--resume` keeps
a matching state and every finished partition; Ctrl-C leaves exactly those behind.
"""

from __future__ import annotations

import heapq
import json
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from service.screen.job import Job
from service.screen.output import write_output
from service.screen.partition import partition_count, partition_path, read_partition, split
from service.screen.patient import Result, assessor

log = logging.getLogger("spinefoot.screen")
WORK = ".screen-work"


class ResumeMismatch(Exception):
    """--resume was asked for a run that is not the one in the output folder."""


def run_local(job: Job, resume: bool) -> dict[str, Any]:
    work = job.out / WORK
    with _pool(job) as pool:  # the workers start (imports, knowledge) while the export is split
        state = _prepare(job, work, resume)
        count = state["partitions"]
        _assess_partitions(pool, job.workers, work, count)
    info = replace(job.info, lines_not_read=state["linesNotRead"])
    summary = write_output(job.out, _merged(work, count), info)
    shutil.rmtree(work)
    return summary


def _prepare(job: Job, work: Path, resume: bool) -> dict[str, Any]:
    """The run's state: reused when resuming the same run, else split afresh."""
    state_file = work / "state.json"
    if resume and state_file.is_file():
        state: dict[str, Any] = json.loads(state_file.read_text())
        if state["fingerprint"] != job.fingerprint():
            raise ResumeMismatch(f"{job.out} holds a run of another export, asOf or knowledge base")
        log.info("screen: resuming, %d partitions", state["partitions"])
        return state
    if work.exists():
        shutil.rmtree(work)
    (work / "results").mkdir(parents=True)
    count = partition_count(job.export.size(), job.partition_bytes)
    started = time.perf_counter()
    not_placed = split(job.export, work / "partitions", count)
    log.info("screen: split into %d partitions in %.1f s", count, time.perf_counter() - started)
    state = {"fingerprint": job.fingerprint(), "partitions": count, "linesNotRead": dict(not_placed)}
    state_file.write_text(json.dumps(state))
    return state


def _pool(job: Job) -> ProcessPoolExecutor:
    """One process per worker, each started at once: the pool would start them on first use."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no engine state inherited
    pool = ProcessPoolExecutor(
        job.workers,
        mp_context=context,
        initializer=_worker_start,
        initargs=(job.knowledge_dir, job.info.as_of),
    )
    for _ in range(job.workers):
        pool.submit(_started)
    return pool


def _started() -> None:
    """A task that only makes the pool start a worker (and run its initializer)."""


def _assess_partitions(pool: ProcessPoolExecutor, workers: int, work: Path, count: int) -> None:
    pending = [i for i in range(count) if not _result_path(work, i).exists()]
    progress = _Progress(count, count - len(pending))
    try:
        running: set[Future[tuple[int, float]]] = set()
        queue = iter(pending)
        for index in queue:  # at most two partitions per worker in flight
            running.add(pool.submit(assess_partition, work, index))
            if len(running) >= 2 * workers:
                break
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                progress.partition_done(*future.result())
                nxt = next(queue, None)
                if nxt is not None:
                    running.add(pool.submit(assess_partition, work, nxt))
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        progress.close()


def _worker_start(knowledge_dir: str | None, as_of: str) -> None:
    """Ctrl-C goes to the whole process group: the parent alone decides, so a worker ignores it
    and finishes (or is cancelled before) its partition; the pipeline is built here, once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER["knowledge_dir"], _WORKER["as_of"] = knowledge_dir, as_of
    assessor(knowledge_dir, as_of)


_WORKER: dict[str, Any] = {}  # this worker process's settings, set by _worker_start


def assess_partition(work: Path, index: int) -> tuple[int, float]:
    """Assess one partition's patients in id order; the results file appears whole or not.
    Returns the patients and the seconds spent in the pipeline itself."""
    patient_assessor = assessor(_WORKER["knowledge_dir"], _WORKER["as_of"])
    pipeline_before = patient_assessor.pipeline_seconds
    patients = read_partition(partition_path(work / "partitions", index))
    target = _result_path(work, index)
    partial = target.with_name(target.name + ".partial")
    with partial.open("w", encoding="utf-8") as stream:
        for patient in sorted(patients):
            stream.write(patient_assessor.assess(patient, patients[patient]).encode() + "\n")
    os.replace(partial, target)
    return len(patients), patient_assessor.pipeline_seconds - pipeline_before


def _result_path(work: Path, index: int) -> Path:
    return work / "results" / f"part-{index:05d}.ndjson"


def _merged(work: Path, count: int) -> Iterator[Result]:
    """Every partition's results, merged into one stream sorted by patient id."""
    streams = [_results(_result_path(work, i)) for i in range(count)]
    return heapq.merge(*streams, key=lambda result: result.patient)


def _results(path: Path) -> Iterator[Result]:
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            yield Result.decode(line)


class _Progress:
    """A bar on a terminal; a plain line per partition otherwise (logs)."""

    def __init__(self, total: int, done: int) -> None:
        self.total, self.done, self.patients, self.pipeline_seconds = total, done, 0, 0.0
        self.started = time.perf_counter()
        self.bar = tqdm(
            total=total, initial=done, unit="partition", file=sys.stderr, disable=not sys.stderr.isatty()
        )

    def partition_done(self, patients: int, pipeline_seconds: float) -> None:
        self.done += 1
        self.patients += patients
        self.pipeline_seconds += pipeline_seconds
        rate = self.patients / max(time.perf_counter() - self.started, 1e-9)
        if self.bar.disable:
            log.info(
                "screen: %d/%d partitions, %d patients, %.1f patients/s",
                self.done,
                self.total,
                self.patients,
                rate,
            )
        else:
            self.bar.set_postfix(patients=self.patients, per_s=f"{rate:.1f}")
            self.bar.update()

    def close(self) -> None:
        """Ends the bar; the log keeps how long this run assessed, and how much of that the
        pipeline itself took (summed over the workers), which the benchmark compares."""
        self.bar.close()
        log.info(
            "screen: assessed %d patients in %.1f s; pipeline %.1f s over all workers",
            self.patients,
            time.perf_counter() - self.started,
            self.pipeline_seconds,
        )
