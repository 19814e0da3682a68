"""The production server as `spinefoot serve` runs it, plus a *floor* endpoint for comparison.

`POST /floor` goes through the same server, framework, hooks and logging, reads and parses the
same body, and returns a fixed small resource: what a request costs before any assessment.

    python -m benchmarks.server PORT WORKERS
"""

from __future__ import annotations

import os
import sys
import tempfile

from service.settings import MULTIPROC_ENV, Settings


def main() -> None:
    port, workers = int(sys.argv[1]), int(sys.argv[2])
    os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="spinefoot-bench-metrics-")
    from flask import Response, request

    from service.assess.parse import Limits, parse_json
    from service.logs import configure_logging
    from service.server import serve_app
    from service.web.app import create_app
    from service.web.responses import fhir_response

    settings = Settings(host="127.0.0.1", port=port, workers=workers)
    configure_logging("WARNING", "json")
    app = create_app(settings)

    def floor() -> Response:
        parse_json(request.get_data(cache=False), Limits())
        return fhir_response(
            {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "information", "code": "informational", "diagnostics": "floor"}],
            }
        )

    app.add_url_rule("/floor", "floor", floor, methods=["POST"])
    serve_app(app, settings)


if __name__ == "__main__":
    main()
