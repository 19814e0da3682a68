"""deploy/nginx.conf in front of `spinefoot serve`, with Debian's nginx (installed by .ci/run).

Skipped only where nginx is not installed and this is not CI; under CI=true a missing nginx fails.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import ASSESS, ROOT, SAMPLE_FILES
from tests.support.server import Server, free_port, running

pytestmark = pytest.mark.slow  # nginx in front of a real server

NGINX = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


@pytest.fixture()
def proxy(tmp_path: Path) -> Iterator[tuple[int, Server]]:
    """nginx with the shipped config, its upstream and port changed to this test's."""
    if NGINX is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is missing under CI (.ci/run installs it)")
        pytest.skip("nginx is not installed")
    with running("--workers", "1") as server:
        port = free_port()
        config = (ROOT / "deploy" / "nginx.conf").read_text()
        config = config.replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{server.port};")
        config = config.replace("listen 80;", f"listen 127.0.0.1:{port};")
        (tmp_path / "nginx.conf").write_text(config)
        directives = f"daemon off; pid {tmp_path}/nginx.pid;"
        if os.geteuid() == 0:
            directives += " user root;"  # its workers must reach the temporary files under tmp_path
        nginx = subprocess.Popen(
            [
                NGINX,
                "-p",
                str(tmp_path),
                "-e",
                "stderr",
                "-c",
                str(tmp_path / "nginx.conf"),
                "-g",
                directives,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(port, nginx)
            yield port, server
        finally:
            nginx.terminate()
            nginx.wait(timeout=30)


def _wait_for(port: int, nginx: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                return
        except OSError:
            assert nginx.poll() is None, "nginx did not start"
            assert time.monotonic() < deadline, "nginx did not answer"
            time.sleep(0.2)


def _post_slowly(port: int, body: bytes, pieces: int, pause: float) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(
            f"POST {ASSESS}?asOf=2026-03-01T09:00:00Z HTTP/1.1\r\nHost: localhost\r\n"
            f"Content-Type: application/fhir+json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n".encode()
        )
        size = -(-len(body) // pieces)
        for start in range(0, len(body), size):
            time.sleep(pause)
            conn.sendall(body[start : start + size])
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
        return reply


def test_the_service_answers_behind_nginx_which_buffers_a_slow_body(proxy: tuple[int, Server]) -> None:
    port, server = proxy
    started = time.monotonic()
    reply = _post_slowly(port, SAMPLE_FILES[0].read_bytes(), pieces=4, pause=0.75)
    assert time.monotonic() - started >= 3
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert b'"RiskAssessment"' in reply
    log = server.stop()
    durations = [
        line["duration_ms"]
        for line in map(json.loads, log.splitlines())
        if line.get("message") == "request" and line.get("path") == ASSESS
    ]
    assert len(durations) == 1
    assert durations[0] < 1000, "the service waited for the slow body: nginx did not buffer it"
