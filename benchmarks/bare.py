"""A bare Flask app under the same gunicorn as `spinefoot serve` (worker class, workers, preload),
for the throughput target of issue 13: it parses the posted body with `json.loads` (as a Flask
view would) and returns a fixed resource. No hooks, logging, metrics or collector tuning.

    python -m benchmarks.bare PORT WORKERS
"""

from __future__ import annotations

import json
import sys

from flask import Flask, Response, request

from service.server import _Server, gunicorn_options
from service.settings import Settings

FIXED = json.dumps(
    {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": "bare"}],
    }
)


def bare_app() -> Flask:
    app = Flask("bare")

    @app.post("/bare")
    def bare() -> Response:
        json.loads(request.get_data())
        return Response(FIXED, mimetype="application/fhir+json")

    @app.get("/readyz")
    def ready() -> Response:
        return Response("ok")

    return app


def main() -> None:
    port, workers = int(sys.argv[1]), int(sys.argv[2])
    _Server(bare_app(), gunicorn_options(Settings(host="127.0.0.1", port=port, workers=workers))).run()


if __name__ == "__main__":
    main()
