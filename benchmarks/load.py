"""Over HTTP: the production server (benchmarks.server) under wrk, and its workers' memory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

LUA = Path(__file__).with_name("post.lua")
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class WrkResult:
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    failed: int  # non-2xx responses and socket errors


class Server:
    """`benchmarks.server` (the service and its floor), or `benchmarks.bare`."""

    def __init__(self, port: int, workers: int, module: str = "benchmarks.server") -> None:
        self.port = port
        self.log: IO[bytes] = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, str(port), str(workers)], stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                    return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(self.stop()) from None
                time.sleep(0.2)

    def worker_rss_mib(self) -> list[float]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        sizes = []
        for pid in children.read_text().split():
            status = Path(f"/proc/{pid}/status").read_text()
            kib = int(_find(r"VmRSS:\s+(\d+)", status)[0])
            sizes.append(kib / 1024)
        return sorted(sizes)

    def stop(self) -> str:
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


def wrk(
    port: int, path: str, bodies: list[Path], seconds: int, connections: int = 16, threads: int = 2
) -> WrkResult:
    env = {**os.environ, "BODY_FILES": ":".join(map(str, bodies)), "URL_PATH": path}
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(LUA),
            f"http://127.0.0.1:{port}",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    failed = sum(
        int(n)
        for n in re.findall(
            r"(?:Non-2xx or 3xx responses|connect|read|write|"
            r"timeout):? (\d+)",
            out,
        )
    )
    return WrkResult(
        int(_find(r"(\d+) requests in", out)[0]),
        float(_find(r"Requests/sec:\s+([\d.]+)", out)[0]),
        _latency(out, "50%"),
        _latency(out, "99%"),
        failed,
    )


def _latency(out: str, percentile: str) -> float:
    value, unit = _find(rf"\s{percentile}\s+([\d.]+)(us|ms|s)", out)
    return float(value) * _UNITS[unit]


def _find(pattern: str, text: str) -> tuple[str, ...]:
    found = re.search(pattern, text)
    if found is None:
        raise RuntimeError(f"{pattern!r} not found in:\n{text}")
    return found.groups()


def assessed_count(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return int(
        sum(
            float(v)
            for v in re.findall(
                r'spinefoot_http_requests_total\{[^}]*route="/fhir/RiskAssessment/\$assess"[^}]*\} '
                r"([\d.e+]+)",
                text,
            )
        )
    )
