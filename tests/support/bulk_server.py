"""A small Bulk Data `$export` server on loopback, in a thread, that misbehaves on purpose.

Kick-off (`GET /fhir/Patient/$export`, `/fhir/Group/{id}/$export`) answers 429 once, then 202
with a status URL. The status URL answers 503 once, then 202 with `Retry-After: 1`, then a slow
202 (0.3 s, no Retry-After), then the manifest. Files need the bearer token that
`POST /token` issues for a client-credentials grant whose JWT assertion verifies with the
client's public key. `requests` records (method, path, query, Authorization present).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

TOKEN = "access-token-1"
CLIENT_ID = "spinefoot-screen"


class BulkServer:
    def __init__(self, export: Path, public_key_pem: str) -> None:
        self.export, self.public_key = export, public_key_pem
        self.requests: list[tuple[str, str, dict[str, list[str]], bool]] = []
        self.calls: dict[str, int] = {}
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> BulkServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def _count(self, step: str) -> int:
        self.calls[step] = self.calls.get(step, 0) + 1
        return self.calls[step]

    def _manifest(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.export / "manifest.json").read_text())
        return {
            **document,
            "requiresAccessToken": True,
            "output": [
                {**item, "url": f"{self.base}/files/{item['url'].rsplit('/', 1)[-1]}"}
                for item in document["output"]
            ],
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlsplit(self.path)
                authorized = self.headers.get("Authorization") == f"Bearer {TOKEN}"
                server.requests.append(("GET", url.path, parse_qs(url.query), authorized))
                if not authorized:
                    return self._send(401, {"resourceType": "OperationOutcome"})
                if url.path.endswith("/$export"):
                    if server._count("kick-off") == 1:
                        return self._send(429, {}, {"Retry-After": "1"})
                    return self._send(202, {}, {"Content-Location": f"{server.base}/status/1"})
                if url.path == "/status/1":
                    return self._status(server._count("status"))
                if url.path.startswith("/files/"):
                    path = server.export / url.path.rsplit("/", 1)[-1]
                    return (
                        self._send_bytes(200, path.read_bytes()) if path.is_file() else (self._send(404, {}))
                    )
                return self._send(404, {})

            def _status(self, call: int) -> None:
                if call == 1:
                    return self._send(503, {})
                if call == 2:
                    return self._send(202, {}, {"Retry-After": "1", "X-Progress": "50%"})
                if call == 3:
                    time.sleep(0.3)
                    return self._send(202, {}, {"X-Progress": "90%"})
                return self._send(200, server._manifest())

            def do_POST(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                server.requests.append(("POST", url.path, form, False))
                if url.path != "/token" or not self._assertion_ok(form):
                    return self._send(401, {"error": "invalid_client"})
                return self._send(200, {"access_token": TOKEN, "token_type": "bearer", "expires_in": 300})

            def _assertion_ok(self, form: dict[str, list[str]]) -> bool:
                try:
                    claims = jwt.decode(
                        form["client_assertion"][0],
                        server.public_key,
                        algorithms=["RS384"],
                        audience=f"{server.base}/token",
                    )
                except (KeyError, jwt.InvalidTokenError):
                    return False
                return (
                    form.get("grant_type") == ["client_credentials"]
                    and claims["iss"] == claims["sub"] == CLIENT_ID
                    and jwt.get_unverified_header(form["client_assertion"][0])["kid"] == "k1"
                )

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                self._send_bytes(status, json.dumps(body).encode(), headers)

            def _send_bytes(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
