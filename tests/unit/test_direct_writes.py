"""A live stream's bytes written straight to its client's socket (adapters/http/direct_writes):
framed as gunicorn frames a body, never waiting in the change reader, keeping what the socket
cannot take in order for the stream's own greenlet to send, and giving up on a client that
lets too much pile up. On real sockets (gevent's: non-blocking descriptors, a cooperative
`sendall`), not patched into the standard library."""

from __future__ import annotations

from datetime import UTC, datetime

import gevent
import pytest
from gevent import socket as gevent_socket

from adapters.http.direct_writes import ChunkWriter, chunk
from application.ports import Change
from application.use_cases.live_updates import RenderedUpdate

AT = datetime(2026, 12, 3, tzinfo=UTC)


def batch(*ids: int, size: int = 40) -> list[RenderedUpdate]:
    return [
        RenderedUpdate.of(Change(i, "device", f"d{i}", AT), f"id: {i}\ndata: {'x' * size}\n\n")
        for i in ids
    ]


def body(updates: list[RenderedUpdate]) -> bytes:
    return b"".join(u.data for u in updates)


@pytest.fixture
def pair():
    server, client = gevent_socket.socketpair()
    yield server, client
    server.close()
    client.close()


def read_all(sock, expected: int, within_s: float = 10) -> bytes:
    got = b""
    with gevent.Timeout(within_s):
        while len(got) < expected:
            data = sock.recv(1 << 16)
            if not data:
                break
            got += data
    return got


def test_a_batch_goes_out_as_one_chunk_framed_once_for_every_stream(pair) -> None:
    server, client = pair
    other_server, other_client = gevent_socket.socketpair()
    updates = batch(1, 2)
    expected = chunk(body(updates))
    assert expected.startswith(b"%X\r\n" % len(body(updates))) and expected.endswith(b"\r\n")
    assert ChunkWriter(server).deliver(updates) and ChunkWriter(other_server).deliver(updates)
    assert read_all(client, len(expected)) == expected
    assert read_all(other_client, len(expected)) == expected
    other_server.close()
    other_client.close()


def test_an_http_1_0_body_is_written_unframed(pair) -> None:
    server, client = pair
    updates = batch(1)
    ChunkWriter(server, chunked=False).deliver(updates)
    ChunkWriter(server, chunked=False).write(b": keepalive\n\n")
    assert read_all(client, len(body(updates)) + 13) == body(updates) + b": keepalive\n\n"


def test_what_the_socket_cannot_take_waits_in_order_and_the_stream_sends_it(pair) -> None:
    server, client = pair
    writer = ChunkWriter(server, limit=1 << 24)
    woken = []
    writer.wake = lambda: woken.append(1)
    batches = [batch(n, size=2000) for n in range(1, 2001)]  # far more than a socket buffer
    for one in batches:
        assert writer.deliver(one)  # never waits: the client reads nothing meanwhile
    assert writer.pending and woken, "the socket took it all: the test did not fill it"
    expected = b"".join(chunk(body(one)) for one in batches) + chunk(b": keepalive\n\n")
    reader = gevent.spawn(read_all, client, len(expected))
    writer.write(b": keepalive\n\n")  # the stream's own bytes go after what waits, sent now
    assert not writer.pending and not writer.broken
    assert reader.get(timeout=10) == expected


def test_a_client_that_lets_too_much_pile_up_is_given_up(pair) -> None:
    server, _ = pair
    writer = ChunkWriter(server, limit=64 * 1024)
    delivered = [writer.deliver(batch(n, size=4000)) for n in range(1, 400)]
    assert delivered[0] and delivered[-1] is False
    writer.abort()
    assert writer.broken and not writer.pending


def test_a_client_gone_breaks_the_writer_and_wakes_the_stream(pair) -> None:
    server, client = pair
    client.close()
    writer = ChunkWriter(server)
    woken = []
    writer.wake = lambda: woken.append(1)
    assert writer.deliver(batch(1))  # the stream ends at its next look, not the reader's job
    assert writer.broken and woken


def test_abort_ends_the_connection(pair) -> None:
    server, client = pair
    ChunkWriter(server).abort()
    assert read_all(client, 1) == b""
