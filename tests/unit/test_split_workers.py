"""The hand-off of a stream request from a threaded worker to a stream worker
(entrypoints/split_workers.py), over real sockets: the request arrives whole, the connection
outlives the sender's descriptor, and a hand-off no stream worker takes is refused in time."""

from __future__ import annotations

import socket

import pytest
from gunicorn import http
from gunicorn.config import Config

from entrypoints.gunicorn_worker import is_stream_path
from entrypoints.split_workers import (
    MAX_HANDOFF_BYTES,
    HandOffRefused,
    ReplayedSocket,
    hand_off,
    handoff_pair,
    request_head,
)

REQUEST = (
    b"GET /api/events?since=3 HTTP/1.1\r\nHost: lab.example\r\n"
    b"Authorization: Bearer abc\r\nLast-Event-ID: 41\r\nAccept: text/event-stream\r\n\r\n"
)


@pytest.fixture
def connection():
    """(the client's socket, the server's accepted socket) on 127.0.0.1."""
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    listener.close()
    yield client, server
    client.close()
    server.close()


def parsed(sock) -> object:
    return next(http.get_parser(Config(), sock, ("127.0.0.1", 1)))


def test_a_stream_request_reaches_the_stream_worker_whole_and_its_answer_reaches_the_client(
    connection,
) -> None:
    client, server = connection
    client.sendall(REQUEST)
    parser = http.get_parser(Config(), server, ("127.0.0.1", 1))
    first = next(parser)
    outbox, inbox = handoff_pair()
    hand_off(outbox, server, request_head(first) + parser.unreader.take_buffered())
    server.close()  # the threaded worker forgets the connection: no FIN for the client

    head, fds, _, _ = socket.recv_fds(inbox, MAX_HANDOFF_BYTES, 1)
    taken = socket.socket(fileno=fds[0])
    again = parsed(ReplayedSocket(taken, head))
    assert (again.method, again.path, again.query) == ("GET", "/api/events", "since=3")
    assert dict(again.headers) == dict(first.headers)
    assert ("LAST-EVENT-ID", "41") in again.headers
    taken.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    taken.close()
    client.settimeout(5)
    assert client.recv(100).endswith(b"\r\n\r\nok")
    outbox.close()
    inbox.close()


def test_bytes_the_client_sent_after_the_head_are_passed_on_too(connection) -> None:
    client, server = connection
    client.sendall(REQUEST + b"GET /api/health HTTP/1.1\r\nHost: lab.example\r\n\r\n")
    parser = http.get_parser(Config(), server, ("127.0.0.1", 1))
    first = next(parser)
    head = request_head(first) + parser.unreader.take_buffered()
    replayed = http.get_parser(Config(), ReplayedSocket(server, head), ("127.0.0.1", 1))
    assert next(replayed).path == "/api/events"
    assert next(replayed).path == "/api/health"


def test_a_hand_off_no_stream_worker_takes_is_refused_with_503_in_time(connection) -> None:
    _, server = connection
    outbox, inbox = handoff_pair()
    outbox.settimeout(0.05)
    with pytest.raises(HandOffRefused) as refused:
        for _ in range(100_000):  # nobody reads the inbox: its buffer fills
            hand_off(outbox, server, REQUEST)
    assert (refused.value.status, refused.value.code) == (503, "streams_unavailable")
    outbox.close()
    inbox.close()


def test_a_head_too_large_to_pass_on_is_a_431(connection) -> None:
    _, server = connection
    outbox, inbox = handoff_pair()
    with pytest.raises(HandOffRefused) as refused:
        hand_off(outbox, server, b"x" * (MAX_HANDOFF_BYTES + 1))
    assert refused.value.status == 431
    outbox.close()
    inbox.close()


def test_the_stream_paths_are_the_live_events_and_the_run_logs_as_they_grow() -> None:
    assert is_stream_path("/api/events")
    assert is_stream_path("/api/test-runs/r-1/logs/stream")
    assert not is_stream_path("/api/devices")
    assert not is_stream_path("/api/test-runs/r-1/logs")
