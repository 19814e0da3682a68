"""The `spark` engine: the same per-patient module as a Spark job (RDD API, no Arrow).

From the CLI (`--engine spark`) it runs in `local[N]`; on a cluster, `spark-submit` runs this
module (see the README), with the driver writing the output. Lines are classified as by the
local engine, grouped by patient (Spark's shuffle is the on-disk split), assessed in each
executor's Python worker with a pipeline built once per worker process, and sorted by patient id.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Iterable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from pyspark import SparkContext, StorageLevel
from pyspark.sql import SparkSession

from service.screen.job import Job
from service.screen.output import write_output
from service.screen.partition import classify
from service.screen.patient import Position, Result, assessor

_SPLITS = 1_000_000  # input splits per file, at most: positions are (file * _SPLITS + split, line)
WORK = ".screen-spark-work"  # the executors' sorted results, merged by the driver
Keyed = tuple[str | None, Any]  # (patient, (position, line)) or (None, reason not placed)


def run_spark(job: Job, master: str | None = None) -> dict[str, Any]:
    """Run on `master` (default `local[workers]`), or on the session spark-submit started."""
    _local_environment()
    builder = (
        SparkSession.builder.appName("spinefoot-screen")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if master or "PYSPARK_GATEWAY_PORT" not in os.environ:  # spark-submit sets the master
        builder = builder.master(master or f"local[{job.workers}]")
    spark = builder.getOrCreate()
    try:
        spark.sparkContext.setLogLevel("ERROR")
        return _screen(spark.sparkContext, job)
    finally:
        spark.stop()


def _local_environment() -> None:
    """Python workers run this interpreter (with this project installed), on loopback."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    logging.getLogger("py4j").setLevel(logging.WARNING)  # a line per gateway call otherwise


def _screen(sc: SparkContext, job: Job) -> dict[str, Any]:
    files = job.export.read_files()
    keyed = sc.union(
        [
            sc.textFile(str(f.path.resolve())).mapPartitionsWithIndex(partial(_keyed, i, f.type))
            for i, f in enumerate(files)
        ]
    )
    keyed.persist(StorageLevel.DISK_ONLY)  # read once, used twice: counts and assessments
    not_read = keyed.filter(lambda kv: kv[0] is None).map(lambda kv: kv[1]).countByValue()
    knowledge_dir, as_of = job.knowledge_dir, job.info.as_of
    work = job.out / WORK
    shutil.rmtree(work, ignore_errors=True)
    # sorted before assessing, so the sort's sampling pass does not assess everything twice
    (
        keyed.filter(lambda kv: kv[0] is not None)
        .groupByKey()
        .sortByKey(numPartitions=max(2 * job.workers, sc.defaultParallelism))
        .mapPartitions(lambda groups: _assess(groups, knowledge_dir, as_of))
        .saveAsTextFile(str(work.resolve()))
    )
    keyed.unpersist()
    try:
        return write_output(job.out, _saved(work), replace(job.info, lines_not_read=dict(not_read)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _saved(work: Path) -> Iterator[Result]:
    """The job's part files in order: sortByKey made them one sorted sequence."""
    for part in sorted(work.glob("part-*")):
        with part.open(encoding="utf-8") as stream:
            for line in stream:
                yield Result.decode(line)


def _keyed(file_index: int, file_type: str | None, split: int, lines: Iterable[str]) -> Iterator[Keyed]:
    """Each line of one input split with its position (file and split, line): export order.
    Lines of types not read are left out; lines that cannot be placed keep their reason."""
    for line_index, text in enumerate(lines):
        data = text.encode()
        patient, reason = classify(data, file_type) if text.strip() else (None, "")
        if patient:
            yield patient, ((file_index * _SPLITS + split, line_index), data)
        elif reason:
            yield None, reason


def _assess(
    groups: Iterable[tuple[str, Iterable[tuple[Position, bytes]]]], knowledge_dir: str | None, as_of: str
) -> Iterator[str]:
    patient_assessor = assessor(knowledge_dir, as_of)  # once per Python worker process
    for patient, lines in groups:
        yield patient_assessor.assess(patient, lines).encode()


def main(argv: list[str] | None = None) -> int:
    """`spark-submit ... -m`-style entry: `spark-submit service/screen/spark_job.py EXPORT --out
    DIR [--as-of T]` on a cluster, with the project wheel in `--py-files`."""
    from service.screen import command

    parser = argparse.ArgumentParser(prog="spark_job")
    sub = parser.add_subparsers(dest="command")
    command.add_parser(sub)
    args = parser.parse_args(["screen", *(argv if argv is not None else sys.argv[1:]), "--engine", "spark"])
    return int(command.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
