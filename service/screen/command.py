"""`spinefoot screen`: assess every patient of a Bulk Data export (contract §5).

Exit codes: 0 the run finished (patients that could not be assessed are in
OperationOutcome.ndjson); 2 the export, the server or the options are unusable; 130 stopped by
Ctrl-C (run again with --resume to continue).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from service.assess.dates import format_instant, parse_instant
from service.knowledge import load_knowledge
from service.logs import configure_logging
from service.screen.bulk import BulkDataError, BulkExportClient, SmartBackendAuth
from service.screen.export import ExportError, open_export
from service.screen.job import Job
from service.screen.local import ResumeMismatch, run_local
from service.screen.output import RunInfo

ENGINES = ("local", "spark")


def add_parser(sub: Any) -> None:
    screen = sub.add_parser(
        "screen",
        help="assess every patient of a Bulk Data export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    screen.add_argument(
        "export", nargs="*", type=Path, help="export folders, manifest.json files or .ndjson[.gz] files"
    )
    screen.add_argument("--out", type=Path, required=True, help="folder for the output")
    screen.add_argument("--engine", choices=ENGINES, default="local")
    screen.add_argument(
        "--workers", type=_positive, default=os.cpu_count() or 1, help="worker processes (default: CPU count)"
    )
    screen.add_argument(
        "--as-of", default=None, help="evaluation instant (default: the export's transactionTime)"
    )
    screen.add_argument("--knowledge-dir", type=Path, default=None)
    screen.add_argument(
        "--partition-mb",
        type=float,
        default=16.0,
        help="export MiB per partition (local engine); a worker holds one "
        "partition, a few times this in memory (default: 16)",
    )
    screen.add_argument(
        "--resume", action="store_true", help="continue a stopped run in --out without redoing finished work"
    )
    bulk = screen.add_argument_group("Bulk Data server (instead of EXPORT)")
    bulk.add_argument(
        "--from-export",
        metavar="URL",
        help="FHIR base URL to run $export on (Patient, or Group with --group)",
    )
    bulk.add_argument("--group", help="Group id: export that group's patients")
    bulk.add_argument("--since", help="_since: only resources changed after this instant")
    bulk.add_argument("--status-url", help="resume waiting for an export already kicked off")
    bulk.add_argument("--token-url", help="SMART Backend Services token endpoint")
    bulk.add_argument("--client-id", help="SMART Backend Services client id")
    bulk.add_argument("--private-key", type=Path, help="PEM private key signing the assertion")
    bulk.add_argument("--key-id", help="`kid` of that key in the client's JWKS")
    screen.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        configure_logging("INFO", "text")
    try:
        paths = _export_paths(args)
        code = _screen(args, open_export(paths))
        if args.from_export or args.status_url:
            shutil.rmtree(paths[0])  # the downloaded export, once screened
        return code
    except (ExportError, BulkDataError, ResumeMismatch, ValueError) as exc:
        print(f"spinefoot screen: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("spinefoot screen: stopped; run again with --resume to continue", file=sys.stderr)
        return 130


def _export_paths(args: argparse.Namespace) -> list[Path]:
    if args.from_export or args.status_url:
        if args.export:
            raise ValueError("give EXPORT paths or --from-export, not both")
        return [_download(args)]
    if not args.export:
        raise ValueError("give an export (folder, manifest.json or .ndjson files) or --from-export")
    return list(args.export)


def _download(args: argparse.Namespace) -> Path:
    auth = None
    if args.client_id or args.private_key or args.token_url:
        if not (args.client_id and args.private_key and args.token_url):
            raise ValueError(
                "SMART Backend Services needs --client-id, --private-key and --token-url together"
            )
        auth = SmartBackendAuth(args.token_url, args.client_id, args.private_key.read_text(), args.key_id)
    client = BulkExportClient(args.from_export or "", auth=auth)
    target = args.out / ".screen-download"
    status_url = args.status_url or client.kick_off(group=args.group, since=args.since)
    print(f"spinefoot screen: export status URL (to resume: --status-url): {status_url}", file=sys.stderr)
    return client.download(client.wait(status_url), target)


def _screen(args: argparse.Namespace, export: Any) -> int:
    kb = load_knowledge(args.knowledge_dir)
    as_of_text = args.as_of or export.transaction_time
    if as_of_text is None:
        raise ValueError("the export has no manifest with a transactionTime: give --as-of")
    as_of = format_instant(parse_instant(as_of_text))
    transaction_time = (
        format_instant(parse_instant(export.transaction_time)) if export.transaction_time else as_of
    )
    info = RunInfo(transaction_time, as_of, kb.id, kb.version, tuple(kb.pathways), export.request)
    knowledge_dir = str(args.knowledge_dir.resolve()) if args.knowledge_dir else None
    job = Job(
        export, args.out, args.workers, info, knowledge_dir, max(1, int(args.partition_mb * 1024 * 1024))
    )
    if args.engine == "spark":
        from service.screen.spark_job import run_spark  # needs the `spark` extra

        summary = run_spark(job)
    else:
        summary = run_local(job, args.resume)
    print(
        f"spinefoot screen: {summary['patients']} patients, {summary['assessed']} assessed, "
        f"{summary['notAssessed']} not assessed; output in {args.out}",
        file=sys.stderr,
    )
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
