"""`spinefoot serve` (gunicorn) and `spinefoot assess FILE...` (same pipeline, no server)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from service.app import create_app
from service.errors import KnowledgeError, SpinefootError
from service.knowledge import load_knowledge
from service.outcome import operation_outcome
from service.pipeline import Pipeline


class _Server(BaseApplication):  # type: ignore[misc]
    """gunicorn with the app built once in the master (--preload): knowledge errors stop startup."""

    def __init__(self, app: Any, options: dict[str, Any]) -> None:
        self._app, self._options = app, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spinefoot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service under gunicorn")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                       help="worker processes (default: CPU count)")
    serve.add_argument("--knowledge-dir", type=Path, default=None)
    assess = sub.add_parser("assess", help="print the RiskAssessment for each bundle file")
    assess.add_argument("files", nargs="+", type=Path)
    assess.add_argument("--as-of", default=None, help="evaluation instant (default: now)")
    assess.add_argument("--knowledge-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        return _assess(args)
    except KnowledgeError as exc:
        print(f"spinefoot: invalid knowledge base: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = create_app({"SPINEFOOT_KNOWLEDGE_DIR": args.knowledge_dir})
    _Server(app, {"bind": f"{args.host}:{args.port}", "workers": args.workers,
                  "worker_class": "sync", "preload_app": True, "accesslog": None}).run()
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


if __name__ == "__main__":
    raise SystemExit(main())
