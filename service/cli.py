"""`spinefoot serve | assess | samples | screen | check-knowledge | healthcheck`.

Exit codes: 0 fine; 1 an assessment or health check failed; 2 bad settings or knowledge base, or
a file or directory needed at start that cannot be read or written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.assess.pipeline import Pipeline
from service.errors import KnowledgeError, SpinefootError, StartupError
from service.knowledge import load_knowledge
from service.outcome import operation_outcome
from service.samples import (
    differences,
    expectation_path,
    expected_for,
    is_expectation,
    sample_files,
    samples_dir,
)
from service.screen import command as screen
from service.settings import (
    MULTIPROC_ENV,
    SettingsError,
    SettingsSchema,
    env_name,
    flag_name,
    load_settings,
)

_SETTINGS_FLAGS = tuple(SettingsSchema().fields)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except SettingsError as exc:
        print(f"spinefoot: invalid setting: {exc}", file=sys.stderr)
        return 2
    except KnowledgeError as exc:
        print(f"spinefoot: invalid knowledge base: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"spinefoot: cannot start: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. an unreadable knowledge file
        print(f"spinefoot: cannot start: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spinefoot", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="run the HTTP service under gunicorn",
        description="Each flag overrides its environment variable.",
    )
    for name, declared in SettingsSchema().fields.items():
        serve.add_argument(
            flag_name(name),
            dest=name,
            default=None,
            metavar="VALUE",
            help=f"{declared.metadata['help']} [{env_name(name)}; default: "
            f"{declared.metadata['default'].replace('`', '')}]",
        )
    serve.set_defaults(run=_serve)
    assess = sub.add_parser(
        "assess",
        help="assess bundle files: the RiskAssessment of each (stdout), a summary "
        "line per file and a tally (stderr)",
        description="FILE may be - for standard input; *.expected.json files are skipped.",
    )
    assess.add_argument("files", nargs="+", type=Path, metavar="FILE")
    assess.add_argument(
        "--as-of",
        default=None,
        help="evaluation instant (default: the asOf of FILE's .expected.json with --check, else now)",
    )
    assess.add_argument("--knowledge-dir", type=Path, default=None)
    assess.add_argument(
        "--check",
        action="store_true",
        help="compare each result with the .expected.json beside it instead of "
        "printing it; exit 1 on any difference",
    )
    assess.add_argument("--pretty", action="store_true", help="indent the JSON")
    assess.set_defaults(run=_assess)
    samples = sub.add_parser(
        "samples", help="list the shipped sample bundles and what each is expected to give"
    )
    samples.set_defaults(run=_samples)
    screen.add_parser(sub)
    check = sub.add_parser(
        "check-knowledge", help="validate a knowledge directory (a site's own, before deploying)"
    )
    check.add_argument("directory", type=Path, nargs="?", default=None)
    check.set_defaults(run=_check_knowledge)
    health = sub.add_parser(
        "healthcheck", help="GET /healthz on this machine's server (the container's HEALTHCHECK)"
    )
    health.set_defaults(run=_healthcheck)
    return parser


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings(os.environ, {name: getattr(args, name) for name in _SETTINGS_FLAGS})
    # before the metrics client is first imported (service.server imports the app)
    directory = os.environ.get(MULTIPROC_ENV) or str(settings.metrics_dir)
    os.environ[MULTIPROC_ENV] = directory
    from service.logs import configure_logging
    from service.metrics import prepare_multiprocess_directory
    from service.server import run

    prepare_multiprocess_directory(directory)
    configure_logging(settings.log_level, settings.log_format)
    run(settings)
    return 0


def _assess(args: argparse.Namespace) -> int:
    """Results on stdout (one JSON document per file), a line per file and a tally on stderr."""
    pipeline = Pipeline(load_knowledge(args.knowledge_dir))
    files = [path for path in args.files if not is_expectation(path)]
    tally: Counter[str] = Counter()
    for path in files:
        result, outcome = _assess_file(pipeline, path, args.as_of, args.check)
        tally[outcome] += 1
        if not args.check:
            print(json.dumps(result, ensure_ascii=False, indent=2 if args.pretty else None))
    print(
        f"{len(files)} files: " + ", ".join(f"{n} {word}" for word, n in sorted(tally.items())),
        file=sys.stderr,
    )
    return 0 if set(tally) <= {"assessed", "as expected"} else 1


def _assess_file(
    pipeline: Pipeline, path: Path, as_of: str | None, check: bool
) -> tuple[dict[str, Any], str]:
    """Assess one file and print its summary line; the outcome word goes in the tally."""
    name = "<stdin>" if str(path) == "-" else str(path)
    expected = expected_for(path) if check and name != "<stdin>" else None
    if check and expected is None:
        print(f"{name}: no {expectation_path(path).name} to check against", file=sys.stderr)
        return {}, "without expectation"
    try:
        body = sys.stdin.buffer.read() if name == "<stdin>" else path.read_bytes()
        assessment = pipeline.assess_body(
            body, as_of or (expected or {}).get("asOf"), lambda: datetime.now(UTC)
        )
    except SpinefootError as exc:
        print(f"{name}: failed: {exc.issues[0].diagnostics}", file=sys.stderr)
        return operation_outcome(exc.issues), "failed"
    except OSError as exc:
        print(f"{name}: failed: {exc.strerror or exc}", file=sys.stderr)
        return operation_outcome([SpinefootError.single("not-found", str(exc)).issues[0]]), "failed"
    findings = "; ".join(f.title for f in assessment.explanation.findings) or "no conclusion"
    problems = differences(assessment.resource, expected) if expected is not None else []
    line = f"{name}: {assessment.pathway} ({findings})"
    if expected is None:
        print(line, file=sys.stderr)
        return assessment.resource, "assessed"
    print(line + (f": DIFFERENT: {'; '.join(problems)}" if problems else ": as expected"), file=sys.stderr)
    return assessment.resource, "different" if problems else "as expected"


def _samples(args: argparse.Namespace) -> int:
    for path in sample_files():
        expected = expected_for(path) or {}
        print(f"{path.name}\t{expected.get('pathway', '?')}\t{expected.get('description', '')}")
    print(
        f"({len(sample_files())} samples in {samples_dir()}; "
        f"check them all: spinefoot assess --check {samples_dir()}/*.json)",
        file=sys.stderr,
    )
    return 0


def _check_knowledge(args: argparse.Namespace) -> int:
    kb = load_knowledge(args.directory)
    print(
        f"knowledge base {kb.id} {kb.version} ({kb.status}): {len(kb.concepts)} concepts, "
        f"{len(kb.rules)} rules; valid"
    )
    return 0


def _healthcheck(args: argparse.Namespace) -> int:
    settings = load_settings(os.environ)
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    try:
        with urllib.request.urlopen(f"http://{host}:{settings.port}/healthz", timeout=3) as r:
            return 0 if r.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
