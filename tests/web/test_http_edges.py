"""HTTP framing edge cases on a real `spinefoot serve` (gevent workers, gunicorn's parser):
chunked bodies with trailers, extensions and bad sizes get 200 or a 4xx, never a 500."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.paths import ASSESS, SAMPLE_FILES
from tests.support.server import Server, running

BODY = SAMPLE_FILES[0].read_bytes()
HEAD = (
    f"POST {ASSESS}?asOf=2026-03-01T09:00:00Z HTTP/1.1\r\nHost: localhost\r\n"
    f"Content-Type: application/fhir+json\r\nTransfer-Encoding: chunked\r\n"
    f"Connection: close\r\n\r\n"
).encode()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running("--workers", "1") as served:
        yield served


def exchange(server: Server, raw: bytes) -> bytes:
    """The status line of the answer to `raw` (b"" if the server closed without one: it may
    reset a connection whose request it refused before reading it all)."""
    reply = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        try:
            conn.sendall(raw)
            conn.shutdown(socket.SHUT_WR)
            while chunk := conn.recv(65536):
                reply += chunk
        except TimeoutError:
            raise  # a hang is a failure
        except OSError:  # reset, broken pipe, or no longer connected
            pass
    return reply.split(b"\r\n", 1)[0]


def chunked(
    pieces: list[bytes], sizes: list[str] | None = None, extension: str = "", trailer: str = ""
) -> bytes:
    sizes = sizes or [f"{len(piece):x}" for piece in pieces]
    body = b"".join(
        f"{size}{extension}\r\n".encode() + piece + b"\r\n" for size, piece in zip(sizes, pieces, strict=True)
    )
    return HEAD + body + f"0\r\n{trailer}\r\n".encode()


@pytest.mark.parametrize(
    "raw,status",
    [
        (chunked([BODY]), b"200"),
        (chunked([BODY], trailer="X-Checksum: 1\r\n"), b"200"),
        (chunked([BODY[:100], BODY[100:]], extension=";name=value"), b"200"),
        (chunked([BODY], sizes=["zz"]), b"400"),
        (chunked([BODY], sizes=[f"{len(BODY) + 5:x}"]), b"400"),
    ],
    ids=["plain", "trailer", "extension", "size not hex", "size too long"],
)
def test_chunked_bodies(server: Server, raw: bytes, status: bytes) -> None:
    assert exchange(server, raw).split(b" ")[1] == status


@given(
    cuts=st.lists(st.integers(0, len(BODY)), max_size=4),
    wrong=st.lists(st.sampled_from(["", "zz", "-1", "ffffffffffffffff", "1 ", "0x10"]), max_size=4),
    extension=st.sampled_from(["", ";a", ";a=b", ";" + "x" * 9000, "\x00"]),
    trailer=st.sampled_from(
        ["", "X-A: 1\r\n", "Content-Length: 5\r\n", "bad\r\n", "X-B: " + "y" * 9000 + "\r\n"]
    ),
)
def test_chunked_edge_cases(
    server: Server, cuts: list[int], wrong: list[str], extension: str, trailer: str
) -> None:
    bounds = [0, *sorted(cuts), len(BODY)]
    pieces = [BODY[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    sizes = [w or f"{len(p):x}" for p, w in zip(pieces, wrong + [""] * len(pieces), strict=False)]
    status = exchange(server, chunked(pieces, sizes, extension, trailer))
    assert status == b"" or not status.split(b" ")[1].startswith(b"5"), status


def test_the_server_logged_no_unexpected_error(server: Server) -> None:
    """Runs after the cases above (same module server): no 500 was hidden behind a 4xx."""
    server.log.seek(0)
    for line in server.log.read().decode().splitlines():
        assert json.loads(line).get("error_kind") != "internal", line
