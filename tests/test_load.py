"""Isolation under load: 32 clients, a shuffled mix of every sample, gunicorn with several gevent
workers, for SPINEFOOT_LOAD_SECONDS (default 60). Every answer must be its own sample's
expected one: a mixed-up patient, a 5xx or a worker crash fails the test."""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
from collections import Counter
from typing import Any

import pytest

from tests.support.assess import expected_for, summary
from tests.support.paths import ASSESS, SAMPLE_FILES
from tests.support.server import running

pytestmark = pytest.mark.slow  # 32 clients against a real server for a minute

CLIENTS = 32
SECONDS = float(os.environ.get("SPINEFOOT_LOAD_SECONDS", "60"))
WORKERS = 3


def test_every_answer_is_its_own_patients_under_load() -> None:
    cases = [(path.read_bytes(), expected_for(path)) for path in SAMPLE_FILES]
    tally: Counter[str] = Counter()
    wrong: list[str] = []
    lock = threading.Lock()
    with running("--workers", str(WORKERS)) as server:
        deadline = time.monotonic() + SECONDS

        def client(seed: int) -> None:
            rng = random.Random(seed)
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            while time.monotonic() < deadline:
                body, expected = rng.choice(cases)
                outcome = _post(connection, body, expected["asOf"])
                with lock:
                    tally[outcome[0]] += 1
                    if outcome[0] == "200" and outcome[1] != {
                        "pathway": expected["pathway"],
                        "predictions": expected["predictions"],
                    }:
                        wrong.append(f"{expected['description']}: got {outcome[1]}")
            connection.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert server.process.poll() is None, "the server died"
    log = server.stop()
    print(f"\nload: {sum(tally.values())} requests in {SECONDS:.0f} s, by status {dict(tally)}")
    assert not wrong, wrong[:5]
    assert set(tally) == {"200"}, tally
    assert sum(tally.values()) >= CLIENTS * 10
    boots = log.count("Booting worker")
    assert boots == WORKERS, f"workers restarted ({boots} boots for {WORKERS} workers)"
    for sign in ("Segmentation fault", "SIGSEGV", "WORKER TIMEOUT", "was sent SIG", "Traceback"):
        assert sign not in log


def _post(
    connection: http.client.HTTPConnection, body: bytes, as_of: str
) -> tuple[str, dict[str, Any] | None]:
    try:
        connection.request("POST", f"{ASSESS}?asOf={as_of}", body, {"Content-Type": "application/fhir+json"})
        response = connection.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as exc:
        connection.close()  # reconnects on the next request
        return f"connection error {type(exc).__name__}", None
    if response.status != 200:
        return str(response.status), None
    return "200", summary(json.loads(data))
