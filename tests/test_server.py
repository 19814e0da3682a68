"""The production server as deployed: gunicorn with several workers, started by `spinefoot serve`."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.server import gunicorn_options
from service.settings import Settings
from tests.support.assess import expected_for, summary
from tests.support.paths import ASSESS, SAMPLE_FILES
from tests.support.server import Server, running, start, wait_ready

pytestmark = pytest.mark.slow  # real gunicorn servers


def post_sample(server: Server, sample: Path) -> dict[str, object]:
    request = urllib.request.Request(
        server.url(ASSESS + "?asOf=2026-03-01T09:00:00Z"),
        data=sample.read_bytes(),
        headers={"Content-Type": "application/fhir+json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body: dict[str, object] = json.loads(response.read())
        return body


def test_serve_answers_and_logs_one_json_line_per_request() -> None:
    server = start("--workers", "2")
    try:
        wait_ready(server)
        sample = SAMPLE_FILES[0]
        assert summary(post_sample(server, sample))["pathway"] == expected_for(sample)["pathway"]
    finally:
        log = server.stop()
    lines = [json.loads(line) for line in log.splitlines()]  # every line is JSON, gunicorn's too
    requests = [line for line in lines if line["message"] == "request"]
    assert {(r["path"], r["status"]) for r in requests} >= {("/readyz", 200), (ASSESS, 200)}
    assert any("gunicorn" in line["logger"] for line in lines)


def test_metrics_are_summed_over_worker_processes(tmp_path: Path) -> None:
    posts = 40
    with running("--workers", "2", env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}) as server:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: post_sample(server, SAMPLE_FILES[0]), range(posts)))
        with urllib.request.urlopen(server.url("/metrics"), timeout=10) as response:
            text = response.read().decode()
    pids = {path.stem.rsplit("_", 1)[-1] for path in tmp_path.glob("counter_*.db")}
    assert len(pids) == 2, "both workers should have answered some of the 40 requests"
    total = sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "spinefoot_http_requests_total" and s.labels["route"] == ASSESS
    )
    assert total == posts


def test_sigterm_lets_an_in_flight_request_finish() -> None:
    server = start("--workers", "1")
    try:
        wait_ready(server)
        body = SAMPLE_FILES[0].read_bytes()
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
            conn.sendall(
                f"POST {ASSESS}?asOf=2026-03-01T09:00:00Z HTTP/1.1\r\n"
                f"Host: localhost\r\nContent-Type: application/fhir+json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body[:100]
            )
            time.sleep(0.5)  # the worker is now reading this request's body
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            conn.sendall(body[100:])
            reply = b""
            while chunk := conn.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        assert b'"RiskAssessment"' in reply
        assert server.process.wait(timeout=30) == 0
    finally:
        server.stop()


def test_an_invalid_site_knowledge_directory_stops_the_start(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "manifest.yaml").write_text("id: site\n")
    server = start(env={"SPINEFOOT_KNOWLEDGE_DIR": str(site)})
    assert server.process.wait(timeout=60) == 2
    error = server.stop()
    assert "invalid knowledge base: manifest.yaml:" in error


def test_the_cli_does_not_import_the_metrics_client_before_serve_configures_it() -> None:
    """Its storage (per process or shared files) is fixed when it is first imported."""
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, service.cli; print('prometheus_client' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "False"


def test_a_dead_workers_live_gauge_files_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """gunicorn's `child_exit` hook, as the metrics client's multiprocess docs require."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for name in ("gauge_livesum_4242.db", "gauge_liveall_4242.db", "counter_4242.db"):
        (tmp_path / name).write_bytes(b"")
    hook = gunicorn_options(Settings())["child_exit"]
    hook(None, SimpleNamespace(pid=4242))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_4242.db"]


def test_an_unusable_data_directory_stops_the_start_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    server = start(env={"SPINEFOOT_DATA_DIR": str(tmp_path / "a-file" / "data")})
    assert server.process.wait(timeout=60) == 2
    assert server.stop().strip().splitlines() == [
        f"spinefoot: cannot start: metrics directory {tmp_path}/a-file/data/metrics: Not a directory"
    ]


def test_an_unreadable_knowledge_file_stops_the_start_with_one_line(knowledge_copy: Path) -> None:
    (knowledge_copy / "valuesets" / "local.yaml").mkdir()  # reading it fails (even as root)
    server = start(env={"SPINEFOOT_KNOWLEDGE_DIR": str(knowledge_copy)})
    assert server.process.wait(timeout=60) == 2
    assert server.stop().strip().splitlines() == [
        f"spinefoot: cannot start: {knowledge_copy}/valuesets/local.yaml: Is a directory"
    ]


@contextmanager
def small_file_system(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` at `path` (root and a kernel that allows it, as on CI; else skipped)."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("a tmpfs cannot be mounted here")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(directory: Path) -> None:
    with open(directory / "filler", "wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 4096)
        except OSError:
            pass


def test_a_full_data_directory_stops_the_start(tmp_path: Path) -> None:
    with small_file_system(tmp_path / "small", "4m") as data:
        fill(data)
        server = start(env={"SPINEFOOT_DATA_DIR": str(data)})
        assert server.process.wait(timeout=60) == 2
        assert "spinefoot: cannot start: metrics directory" in server.stop()


def test_a_worker_started_on_a_full_disk_answers_503_and_does_not_crash(tmp_path: Path) -> None:
    """Metrics are written through mmap: an unallocated page on a full disk was SIGBUS, every
    request killing its worker. Now each worker allocates its files first, or answers 503."""
    with small_file_system(tmp_path / "small", "8m") as data:
        server = start("--workers", "1", env={"SPINEFOOT_DATA_DIR": str(data)})
        try:
            wait_ready(server)
            assert post_sample(server, SAMPLE_FILES[0])["resourceType"] == "RiskAssessment"
            fill(data)
            assert post_sample(server, SAMPLE_FILES[0])["resourceType"] == "RiskAssessment"
            server.log.seek(0)
            pid = int(re.findall(rb"Booting worker with pid: (\d+)", server.log.read())[-1])
            os.kill(pid, signal.SIGKILL)  # its replacement starts on the full disk
            statuses = [_status(server) for _ in range(20)]
            assert statuses[-5:] == [503] * 5, statuses
            assert server.process.poll() is None
        finally:
            log = server.stop()
    assert log.count("Booting worker") == 2, "the new worker crashed and was restarted"
    assert "metric files could not be allocated; answering 503" in log


def _status(server: Server) -> int:
    time.sleep(0.25)
    request = urllib.request.Request(
        server.url(ASSESS + "?asOf=2026-03-01T09:00:00Z"),
        data=SAMPLE_FILES[0].read_bytes(),
        headers={"Content-Type": "application/fhir+json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        assert error.headers["Content-Type"] == "application/fhir+json"
        return int(error.code)
    except OSError:
        return 0
