"""Slow and idle clients must not starve the production server (real sockets, `spinefoot serve`).

50 clients hold connections open (idle, headers or a body sent a byte a second, reconnecting
when closed) for SPINEFOOT_SLOW_CLIENT_SECONDS (default 60) while a normal client's `$assess`
must keep succeeding with p99 under 1 s.
"""

from __future__ import annotations

import http.client
import os
import time

import pytest

from tests.support.paths import ASSESS, SAMPLE_FILES
from tests.support.server import running
from tests.support.slow_clients import attacking, probe

SECONDS = float(os.environ.get("SPINEFOOT_SLOW_CLIENT_SECONDS", "60"))
ATTACKERS = 50
BODY = SAMPLE_FILES[0].read_bytes()


def post_assess(connection: http.client.HTTPConnection) -> int:
    connection.request(
        "POST",
        ASSESS + "?asOf=2026-03-01T09:00:00Z",
        body=BODY,
        headers={"Content-Type": "application/fhir+json"},
    )
    response = connection.getresponse()
    response.read()
    return response.status


@pytest.mark.slow
def test_fifty_slow_clients_do_not_starve_a_normal_one() -> None:
    with running("--workers", "2") as server, attacking(server.port, ATTACKERS, SECONDS, ASSESS):
        time.sleep(2)  # every attacker connected
        result = probe(server.port, post_assess, until=time.monotonic() + SECONDS - 2)
        assert server.process.poll() is None, "the server died"
    answered = len(result.latencies)
    print(f"\nslow clients: {answered} answered, {len(result.failures)} failed, p99 {result.p99():.3f} s")
    assert answered >= SECONDS, "the normal client got too few answers"
    assert not result.failures, result.failures[:5]
    assert result.p99() < 1.0
