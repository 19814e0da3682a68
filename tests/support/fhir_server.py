"""A small FHIR server for tests, run as its own process: reads and paged searches over one bundle.

    python -m tests.support.fhir_server TOKEN PAGE_SIZE [any-patient] < BUNDLE

Prints its port on the first line of stdout. Answers `GET /fhir/Patient/{id}` and
`GET /fhir/{Type}?patient={id}` (or `POST /fhir/{Type}/_search`) as searchset Bundles of
PAGE_SIZE entries linked by `next`; anything without `Authorization: Bearer TOKEN` gets 401.
`GET /requests` lists what was asked.
With `any-patient` it is faulty: searches return every patient's resources.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def serve(bundle: dict[str, Any], token: str, page_size: int, any_patient: bool = False) -> None:
    resources = [entry["resource"] for entry in bundle["entry"]]
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlsplit(self.path)
            if url.path == "/requests":
                return self._send(200, asked)
            asked.append(self.path)
            if self.headers.get("Authorization") != f"Bearer {token}":
                return self._send(
                    401,
                    {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login"}]},
                )
            parts = url.path.strip("/").split("/")
            if len(parts) == 3 and parts[0] == "fhir" and parts[2] == "_search":
                return self._search(parts[1], parse_qs(self._form()))
            if len(parts) == 3 and parts[0] == "fhir":
                found = [r for r in resources if [r["resourceType"], r.get("id")] == parts[1:]]
                return self._send(200, found[0]) if found else self._send(404, {})
            if len(parts) == 2 and parts[0] == "fhir":
                return self._search(parts[1], parse_qs(url.query))
            return self._send(404, {})

        do_POST = do_GET  # noqa: N815 (http.server's name): POST {type}/_search

        def _form(self) -> str:
            return self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()

        def _search(self, rtype: str, query: dict[str, list[str]]) -> None:
            patient = query.get("patient", [""])[0]
            page = int(query.get("_page", ["0"])[0])
            matches = [
                r
                for r in resources
                if r["resourceType"] == rtype
                and (any_patient or (r.get("subject") or {}).get("reference") == f"Patient/{patient}")
            ]
            chunk = matches[page * page_size : (page + 1) * page_size]
            base = f"http://127.0.0.1:{self.server.server_address[1]}/fhir/{rtype}"
            links = [{"relation": "self", "url": f"{base}?patient={patient}&_page={page}"}]
            if (page + 1) * page_size < len(matches):
                links.append({"relation": "next", "url": f"{base}?patient={patient}&_page={page + 1}"})
            self._send(
                200,
                {
                    "resourceType": "Bundle",
                    "type": "searchset",
                    "total": len(matches),
                    "link": links,
                    "entry": [
                        {"fullUrl": f"{base}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                        for r in chunk
                    ],
                },
            )

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(json.load(sys.stdin), sys.argv[1], int(sys.argv[2]), sys.argv[3:] == ["any-patient"])
