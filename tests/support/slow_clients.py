"""Hostile clients on real sockets: idle connections, headers or a body sent a byte a second.

Each one reconnects as soon as the server closes it, until its deadline, so that a server which
frees a connection only to hand it to the next slow client still counts as starved.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

KINDS = ("idle", "slow-headers", "slow-body")
_TICK = 1.0  # seconds between two bytes of a slow client


def _trickle(conn: socket.socket, kind: str, path: str, deadline: float) -> None:
    """Hold `conn` in the way `kind` says until the server closes it or the deadline passes."""
    if kind == "slow-body":
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/fhir+json"
            f"\r\nContent-Length: 1000000\r\n\r\n".encode()
        )
    elif kind == "slow-headers":
        conn.sendall(f"POST {path} HTTP/1.1\r\nHost: localhost\r\n".encode())
    conn.settimeout(_TICK)
    while time.monotonic() < deadline:
        try:
            if conn.recv(4096) == b"":
                return  # closed by the server: reconnect
        except TimeoutError:
            pass
        if kind == "slow-body":
            conn.sendall(b"{")
        elif kind == "slow-headers":
            conn.sendall(b"X-Slow: 1\r\n")


def _attacker(port: int, kind: str, path: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                _trickle(conn, kind, path, deadline)
        except OSError:
            time.sleep(0.1)  # refused or reset: try again, as an attacker would


@contextmanager
def attacking(port: int, clients: int, seconds: float, path: str) -> Iterator[None]:
    """`clients` slow clients (of every kind in turn) against `port` for `seconds`."""
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=_attacker, args=(port, KINDS[i % len(KINDS)], path, deadline), daemon=True)
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        for thread in threads:
            thread.join(timeout=seconds + 10)


@dataclass
class Probe:
    """A normal client's answers: latency in seconds of each 200, and every other outcome."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def p99(self) -> float:
        ordered = sorted(self.latencies + [float("inf")] * len(self.failures))
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def probe(
    port: int,
    request: Callable[[http.client.HTTPConnection], int],
    until: float,
    timeout: float = 5.0,
    pause: float = 0.2,
) -> Probe:
    """Send `request` on a fresh connection every `pause` seconds until `until`."""
    result = Probe()
    while time.monotonic() < until:
        start = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            status = request(connection)
            if status == 200:
                result.latencies.append(time.monotonic() - start)
            else:
                result.failures.append(f"HTTP {status}")
        except OSError as exc:
            result.failures.append(type(exc).__name__)
        finally:
            connection.close()
        time.sleep(pause)
    return result
