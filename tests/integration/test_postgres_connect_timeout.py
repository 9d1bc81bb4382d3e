"""A PostgreSQL connection attempt ends: a server that accepts the TCP connection and then
says nothing (a host gone dark behind a load balancer, a wedged proxy) makes libpq wait without
limit unless it is given `connect_timeout`. The engines and the LISTEN connection give it one;
a `connect_timeout` in the database URL wins."""

from __future__ import annotations

import socket
import threading

import psycopg2
import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from adapters.persistence import engine as engine_module
from adapters.persistence.change_signal import PostgresChangeSignal
from adapters.persistence.engine import make_engine


@pytest.fixture(autouse=True)
def short_timeout(monkeypatch):
    # libpq's shortest: the tests wait for it to pass
    monkeypatch.setattr(engine_module, "POSTGRES_CONNECT_TIMEOUT_S", 2)


@pytest.fixture
def silent_server():
    """A listening socket that never accepts: the kernel completes the handshake, and then
    nothing answers libpq's startup message."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


def _ends(attempt) -> BaseException | None:
    """Runs `attempt` in a thread; what it raised, or None while it is still waiting after
    well over the connect timeout."""
    outcome: list[BaseException] = []

    def target() -> None:
        try:
            attempt()
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout=30)
    return outcome[0] if outcome else None


def test_an_engine_gives_up_on_a_server_that_never_answers(silent_server):
    engine = make_engine(f"postgresql+psycopg2://devicelab@127.0.0.1:{silent_server}/devicelab")
    try:
        error = _ends(lambda: engine.connect().close())
    finally:
        engine.dispose()
    assert isinstance(error, OperationalError), error
    assert "timeout" in str(error), error


def test_the_listen_connection_gives_up_too(silent_server):
    signal = PostgresChangeSignal(
        f"postgresql+psycopg2://devicelab@127.0.0.1:{silent_server}/devicelab"
    )
    error = _ends(lambda: psycopg2.connect(**signal._connect_args))
    assert isinstance(error, psycopg2.OperationalError), error


def test_a_connect_timeout_in_the_url_wins(silent_server):
    url = f"postgresql+psycopg2://devicelab@127.0.0.1:{silent_server}/devicelab?connect_timeout=2"
    engine = make_engine(url)
    seen: list[dict] = []

    @event.listens_for(engine, "do_connect")
    def _capture(_dialect, _record, _args, params):
        seen.append(dict(params))
        raise ConnectionAbortedError("captured")

    with pytest.raises(Exception, match="captured"):
        engine.connect()
    engine.dispose()
    assert str(seen[0]["connect_timeout"]) == "2"
    assert PostgresChangeSignal(url)._connect_args["connect_timeout"] == "2"
