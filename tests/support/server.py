"""`spinefoot serve` started for a test: on a free port, its log in a file, stopped with SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

GRACE = 45  # seconds a stopping server may take: gunicorn's graceful timeout, 30 s, and some


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: IO[bytes]  # a file, not a pipe: a pipe nobody reads fills up and blocks the server
    data_dir: str | None = None  # made for this server, removed when it stops
    output: str = ""

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> str:
        """SIGTERM, then everything the server wrote to stderr. gunicorn gives workers up to
        its graceful timeout (30 s by default) to finish, so this waits longer than that; a
        server that is still running then is killed, and its log is read and closed anyway."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=GRACE)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            if not self.log.closed:
                self.log.seek(0)
                self.output = self.log.read().decode()
                self.log.close()
            if self.data_dir:
                shutil.rmtree(self.data_dir, ignore_errors=True)
        return self.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(*args: str, env: dict[str, str] | None = None) -> Server:
    """A data directory of its own unless `env` names one: engineers' suites run side by side."""
    port = free_port()
    log = tempfile.TemporaryFile()
    own = None if "SPINEFOOT_DATA_DIR" in (env or {}) else tempfile.mkdtemp(prefix="spinefoot-test-")
    data = {"SPINEFOOT_DATA_DIR": own} if own else {}
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env={**os.environ, **data, **(env or {})},
    )
    return Server(process, port, log, own)


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(server.url("/readyz"), timeout=2) as response:
                assert response.status == 200
                return
        except OSError:
            assert server.process.poll() is None, server.stop()
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)


@contextmanager
def running(*args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    server = start(*args, env=env)
    try:
        wait_ready(server)
        yield server
    finally:
        server.stop()
