"""`spinefoot serve | assess | check-knowledge | healthcheck`.

Exit codes: 0 fine; 1 an assessment or health check failed; 2 bad settings or knowledge base, or
a file or directory needed at start that cannot be read or written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from service.errors import KnowledgeError, SpinefootError, StartupError
from service.knowledge import load_knowledge
from service.outcome import operation_outcome
from service.pipeline import Pipeline
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
    parser = argparse.ArgumentParser(prog="spinefoot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service under gunicorn",
                           description="Each flag overrides its environment variable.")
    for name, declared in SettingsSchema().fields.items():
        serve.add_argument(flag_name(name), dest=name, default=None, metavar="VALUE",
                           help=f"{declared.metadata['help']} [{env_name(name)}; default: "
                                f"{declared.metadata['default'].replace('`', '')}]")
    serve.set_defaults(run=_serve)
    assess = sub.add_parser("assess", help="print the RiskAssessment for each bundle file")
    assess.add_argument("files", nargs="+", type=Path)
    assess.add_argument("--as-of", default=None, help="evaluation instant (default: now)")
    assess.add_argument("--knowledge-dir", type=Path, default=None)
    assess.set_defaults(run=_assess)
    check = sub.add_parser("check-knowledge",
                           help="validate a knowledge directory (a site's own, before deploying)")
    check.add_argument("directory", type=Path, nargs="?", default=None)
    check.set_defaults(run=_check_knowledge)
    health = sub.add_parser("healthcheck", help="GET /healthz on this machine's server "
                                                "(the container's HEALTHCHECK)")
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
    """One JSON document per file (pretty for one file, one line each for several)."""
    pipeline = Pipeline(load_knowledge(args.knowledge_dir))
    failed = 0
    for path in args.files:
        try:
            result = pipeline.assess_body(path.read_bytes(), args.as_of,
                                          lambda: datetime.now(UTC)).resource
        except SpinefootError as exc:
            failed += 1
            result = operation_outcome(exc.issues)
        except OSError as exc:
            failed += 1
            result = operation_outcome([SpinefootError.single("not-found", str(exc)).issues[0]])
        print(json.dumps(result, ensure_ascii=False, indent=2 if len(args.files) == 1 else None))
    return 1 if failed else 0


def _check_knowledge(args: argparse.Namespace) -> int:
    kb = load_knowledge(args.directory)
    print(f"knowledge base {kb.id} {kb.version} ({kb.status}): {len(kb.concepts)} concepts, "
          f"{len(kb.rules)} rules; valid")
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
