"""A hostile HTTP server on loopback, for the FHIR client and the JWKS fetch: huge, slow, deep
and escaping answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEEP = b'{"resourceType": "Patient", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"


class Hostile(BaseHTTPRequestHandler):
    """/fhir/huge: 20 MB of JSON; /fhir/slow: a byte every 50 ms; /fhir/deep: nesting 50,000;
    /fhir/next-up: a page whose next link climbs out of /fhir. Every path asked is recorded."""

    asked: list[str] = []
    echo = b"{}"  # what /fhir/echo answers

    def log_message(self, *_: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.asked.append(self.path)
        kind = self.path.split("/")[2] if self.path.count("/") >= 2 else ""
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        try:
            getattr(self, f"_{kind.replace('-', '_')}", self._ok)()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    do_POST = do_GET  # noqa: N815 (http.server's name): searches come as POST {type}/_search

    def _huge(self) -> None:
        self.end_headers()
        self.wfile.write(b'{"resourceType": "Patient", "x": "')
        for _ in range(320):
            self.wfile.write(b"a" * 65536)
        self.wfile.write(b'"}')

    def _slow(self) -> None:
        body = b'{"resourceType": "Patient"' + b" " * 300 + b"}"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for byte in body:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.05)

    def _deep(self) -> None:
        self.send_header("Content-Length", str(len(DEEP)))
        self.end_headers()
        self.wfile.write(DEEP)

    def _next_up(self) -> None:
        port = self.server.server_address[1]
        self._json(
            b'{"resourceType": "Bundle", "type": "searchset", "link": [{"relation": '
            b'"next", "url": "http://127.0.0.1:%d/fhir/next-up/../../admin/x"}]}' % port
        )

    def _echo(self) -> None:
        self._json(self.echo)

    def _ok(self) -> None:
        self._json(b'{"resourceType": "Bundle", "type": "searchset"}')

    def _json(self, body: bytes) -> None:
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def hostile_server() -> Iterator[str]:
    """The server in a thread of this process; yields its base URL (`.../fhir`)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    finally:
        server.shutdown()
        server.server_close()
