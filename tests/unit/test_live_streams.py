"""The live-stream rules on the in-memory twins: at most N streams per user, each in a slot of
its own that comes free when the stream closes or its lease lapses, a lost race for a slot
tries the next one; and the periodic re-check, one pass for all the streams of a process,
ends a stream whose session is over, renews the others' leases, and gives a stream whose lease
lapsed a free slot again."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.identifiers import SequentialIds
from adapters.persistence.in_memory import InMemoryStore, InMemoryUnitOfWork
from application.auth.errors import AuthServiceUnavailable
from application.auth.users import ChangePasswordRequest, UserChanges
from application.errors import TooManyStreams
from application.ports import StreamLease
from application.use_cases.live_streams import (
    CloseStream,
    KeepStreamsOpen,
    OpenStream,
    StreamEnd,
    lease_for,
    slot_to_try,
)
from domain import users
from domain.users import Role
from tests.unit.auth_world import PASSWORD, T0, AuthWorld

LEASE_S = lease_for(5)


class Streams:
    def __init__(self, max_per_user: int = 8, uow_class: type = InMemoryUnitOfWork) -> None:
        self.store = InMemoryStore()
        self.auth = AuthWorld()
        self.clock = self.auth.clock  # one time for sessions and leases
        self.uow = lambda read_only=False: uow_class(self.store, read_only)
        self.open = OpenStream(self.uow, self.clock, SequentialIds("s"), max_per_user, LEASE_S)
        self.keeper = self.keeper_with(self.auth.authenticate)
        self.close = CloseStream(self.uow)

    def keeper_with(self, verifier) -> KeepStreamsOpen:
        return KeepStreamsOpen(
            verifier, self.uow, self.clock, self.open, LEASE_S, 5, in_background=False
        )

    def keep_open(self, token: str, lease: StreamLease) -> StreamEnd | None:
        """One re-check pass with this stream open: why it ends, or None."""
        kept = self.keeper.keep(token, lease)
        self.keeper.check_all()
        self.keeper.release(kept)
        return kept.end

    def held(self, user_id: str) -> list[StreamLease]:
        with self.uow() as uow:
            return uow.stream_leases.of_user(user_id)


@pytest.fixture
def streams() -> Streams:
    return Streams()


def test_a_user_gets_at_most_the_cap_and_others_are_not_affected(streams: Streams) -> None:
    leases = [streams.open("ada") for _ in range(8)]
    assert sorted(lease.slot for lease in leases) == list(range(8))
    streams.clock.advance(3)
    with pytest.raises(TooManyStreams) as refused:
        streams.open("ada")
    # the soonest a slot can come free: when the oldest lease runs out unrenewed
    assert refused.value.retry_after == LEASE_S - 3
    assert refused.value.code == "too_many_streams"
    assert streams.open("bob").slot == 0
    assert len(streams.held("ada")) == 8


def test_a_closed_stream_gives_its_slot_back(streams: Streams) -> None:
    leases = [streams.open("ada") for _ in range(8)]
    streams.close(leases[3])
    streams.close(leases[3])  # closing twice is harmless
    assert len(streams.held("ada")) == 7
    assert streams.open("ada").slot == 3
    with pytest.raises(TooManyStreams):
        streams.open("ada")


def test_a_lease_that_is_not_renewed_lapses(streams: Streams) -> None:
    streams.auth.add_user("ada@lab.example", "viewer")
    login = streams.auth.sign_in()
    ada = login.user.id
    first = streams.open(ada)
    for _ in range(7):
        streams.open(ada)
    streams.clock.advance(LEASE_S - 1)
    with pytest.raises(TooManyStreams):
        streams.open(ada)
    streams.clock.advance(1)  # the leases have run out: their streams are taken for dead
    assert streams.open(ada).slot == 0
    for _ in range(7):
        streams.open(ada)
    # the stream that missed its renewals finds every slot taken: it has lost its own
    assert streams.keep_open(login.token, first) is StreamEnd.LEASE_LOST
    assert len(streams.held(ada)) == 8


def test_a_stream_whose_lease_lapsed_takes_a_free_slot_again(streams: Streams) -> None:
    """A stream still open whose renewal came late (its process short of CPU) and whose lease
    the next stream to open removed as expired goes on in a free slot of its user."""
    streams.auth.add_user("ada@lab.example", "viewer")
    login = streams.auth.sign_in()
    ada = login.user.id
    late = streams.keeper.keep(login.token, streams.open(ada))
    streams.clock.advance(LEASE_S)
    streams.open(ada)  # removes the lapsed lease and takes slot 0
    streams.keeper.check_all()
    assert late.end is None
    assert late.lease.slot == 1
    assert sorted(lease.id for lease in streams.held(ada)) == sorted(
        [late.lease.id, streams.held(ada)[0].id]
    )
    streams.keeper.release(late)
    streams.close(late.lease)
    assert len(streams.held(ada)) == 1


def test_one_pass_checks_each_token_once_and_renews_only_streams_that_ran(
    streams: Streams,
) -> None:
    streams.auth.add_user("ada@lab.example", "viewer")
    login = streams.auth.sign_in()
    verified: list[str] = []

    class Counting:
        def verify(self, token: str):
            verified.append(token)
            return streams.auth.authenticate.verify(token)

    keeper = streams.keeper_with(Counting())
    kept = [keeper.keep(login.token, streams.open(login.user.id)) for _ in range(3)]
    streams.clock.advance(LEASE_S / 2)
    kept[2].served = False  # its generator never ran since it opened (a frozen process)
    keeper.check_all()
    assert verified == [login.token]
    expiry = {lease.id: lease.expires_at for lease in streams.held(login.user.id)}
    renewed_until = streams.clock.now() + timedelta(seconds=LEASE_S)
    assert [expiry[k.lease.id] == renewed_until for k in kept] == [True, True, False]
    assert all(k.end is None for k in kept)


def test_renewal_keeps_a_stream_alive_past_its_first_lease(streams: Streams) -> None:
    streams.auth.add_user("ada@lab.example", "viewer")
    login = streams.auth.sign_in()
    lease = streams.open(login.user.id)
    for _ in range(5):
        streams.clock.advance(LEASE_S / 2)
        assert streams.keep_open(login.token, lease) is None
    (renewed,) = streams.held(login.user.id)
    assert renewed.expires_at == streams.clock.now() + (lease.expires_at - T0)


def racing(take_slot) -> type[InMemoryUnitOfWork]:
    """A unit of work in which, right after the free slots were read, another stream takes
    `take_slot(held)` (a slot number, or None for no race this time)."""

    class RacedUnitOfWork(InMemoryUnitOfWork):
        def __enter__(self):
            super().__enter__()
            leases = self.stream_leases
            seen_free = leases.of_user

            def of_user(user_id: str) -> list[StreamLease]:
                held = seen_free(user_id)
                slot = take_slot(held)
                if slot is not None:
                    with InMemoryUnitOfWork(self.store) as other:  # the store's lock is reentrant
                        other.stream_leases.add(
                            StreamLease(f"other-{slot}", user_id, slot, T0.replace(2030))
                        )
                        other.commit()
                return held

            leases.of_user = of_user  # type: ignore[method-assign]
            return self

    return RacedUnitOfWork


def test_a_lost_race_for_a_slot_takes_the_next_free_one() -> None:
    raced: list[int] = []

    def once(held):  # another process takes slot 0 the first time only
        if raced:
            return None
        raced.append(0)
        return 0

    RacedUnitOfWork = racing(once)
    streams = Streams(max_per_user=2, uow_class=RacedUnitOfWork)
    assert streams.open("ada").slot == 1
    assert sorted(lease.slot for lease in streams.held("ada")) == [0, 1]
    with pytest.raises(TooManyStreams):
        streams.open("ada")


def test_the_recheck_ends_a_stream_whose_session_is_over(streams: Streams) -> None:
    auth = streams.auth
    auth.add_user("admin@lab.example", "admin")  # one enabled admin must remain
    user = auth.add_user("ada@lab.example", "viewer")
    # logged out
    login = auth.sign_in()
    lease = streams.open(user.id)
    assert streams.keep_open(login.token, lease) is None
    auth.logout(login.session.id)
    assert streams.keep_open(login.token, lease) is StreamEnd.SESSION_ENDED

    # the password changed in another session; the session that changed it goes on
    other, changer = auth.sign_in(), auth.sign_in()
    auth.change_password(
        auth.principal(changer.token), ChangePasswordRequest(PASSWORD, "a new password 123")
    )
    assert streams.keep_open(other.token, lease) is StreamEnd.SESSION_ENDED
    assert streams.keep_open(changer.token, lease) is None

    # the user disabled
    auth.update_user(user.id, UserChanges(disabled=True))
    assert streams.keep_open(changer.token, lease) is StreamEnd.SESSION_ENDED


def test_the_recheck_ends_a_stream_whose_session_expired(streams: Streams) -> None:
    streams.auth.add_user("ada@lab.example", "viewer")
    login = streams.auth.sign_in()
    lease = streams.open(login.user.id)
    streams.clock.advance(AuthWorld.policy.idle_timeout.total_seconds() + 1)
    assert streams.keep_open(login.token, lease) is StreamEnd.SESSION_ENDED


def test_the_recheck_fails_closed_when_the_session_cannot_be_checked(streams: Streams) -> None:
    class Unreachable:
        def verify(self, token: str):
            raise AuthServiceUnavailable("the auth service is down")

    streams.keeper = streams.keeper_with(Unreachable())
    assert streams.keep_open("token", streams.open("ada")) is StreamEnd.AUTH_UNAVAILABLE


def test_a_token_of_another_user_does_not_keep_the_stream(streams: Streams) -> None:
    streams.auth.add_user("bob@lab.example", "viewer")
    bob = streams.auth.sign_in("bob@lab.example")
    assert streams.keep_open(bob.token, streams.open("ada")) is StreamEnd.SESSION_ENDED


def test_the_recheck_ends_a_stream_whose_role_may_no_longer_read(
    streams: Streams, monkeypatch: pytest.MonkeyPatch
) -> None:
    streams.auth.add_user("ada@lab.example", "viewer")
    login = streams.auth.sign_in()
    lease = streams.open(login.user.id)
    # every role reads today; should one stop doing so, its open streams end
    monkeypatch.setitem(users.ROLE_PERMISSIONS, Role.VIEWER, frozenset())
    assert streams.keep_open(login.token, lease) is StreamEnd.FORBIDDEN


def test_a_lowered_cap_counts_the_streams_opened_before(streams: Streams) -> None:
    wide = OpenStream(streams.uow, streams.clock, SequentialIds("w"), 8, LEASE_S)
    for _ in range(8):
        wide("ada")
    for lease in streams.held("ada")[:5]:  # slots 0-4 come free, 5-7 stay held
        streams.close(lease)
    narrow = OpenStream(streams.uow, streams.clock, SequentialIds("n"), 3, LEASE_S)
    with pytest.raises(TooManyStreams):
        narrow("ada")


def test_the_stream_settings() -> None:
    from entrypoints.settings import Settings, SettingsError, variable_names

    defaults = Settings.from_env({})
    assert (defaults.stream_recheck_s, defaults.max_streams_per_user) == (5, 8)
    chosen = Settings.from_env(
        {"DEVICELAB_STREAM_RECHECK_S": "0.5", "DEVICELAB_MAX_STREAMS_PER_USER": "3"}
    )
    assert (chosen.stream_recheck_s, chosen.max_streams_per_user) == (0.5, 3)
    for name, bad in [
        ("DEVICELAB_STREAM_RECHECK_S", "0"),
        ("DEVICELAB_STREAM_RECHECK_S", "61"),
        ("DEVICELAB_STREAM_RECHECK_S", "soon"),
        ("DEVICELAB_MAX_STREAMS_PER_USER", "0"),
    ]:
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: bad})
    assert {"DEVICELAB_STREAM_RECHECK_S", "DEVICELAB_MAX_STREAMS_PER_USER"} <= variable_names()


def test_the_stream_batch_window_is_read_from_the_environment_and_bounded() -> None:
    from entrypoints.settings import Settings, SettingsError, variable_names

    assert Settings.from_env({}).stream_batch_s == 0.25
    assert Settings.from_env({"DEVICELAB_STREAM_BATCH_S": "0"}).stream_batch_s == 0
    for bad in ("-0.1", "1.5", "often"):
        with pytest.raises(SettingsError, match="DEVICELAB_STREAM_BATCH_S"):
            Settings.from_env({"DEVICELAB_STREAM_BATCH_S": bad})
    assert "DEVICELAB_STREAM_BATCH_S" in variable_names()


def test_after_a_lost_race_another_free_slot_is_tried_not_the_lowest_again() -> None:
    held = [StreamLease("a", "ada", 0, T0)]
    assert slot_to_try(held, 10, attempt=0) == 1
    assert slot_to_try(held, 10, attempt=1, choose=max) == 9
    assert (
        slot_to_try(held + [StreamLease(str(n), "ada", n, T0) for n in range(1, 10)], 10, 3) is None
    )


def test_streams_opened_together_get_free_slots_though_each_race_for_the_lowest_is_lost() -> None:
    def the_lowest_free(held):  # many streams of the user open at once
        taken = {lease.slot for lease in held}
        return next(slot for slot in range(40) if slot not in taken)

    CrowdedUnitOfWork = racing(the_lowest_free)
    streams = Streams(max_per_user=40, uow_class=CrowdedUnitOfWork)
    lease = streams.open("ada")  # before: five tries of the lowest slot, five lost, 429
    assert lease.slot != 0


def test_the_api_serves_with_the_gevent_worker_unless_told_otherwise() -> None:
    from entrypoints.gunicorn_worker import WORKER_CLASSES
    from entrypoints.settings import Settings, SettingsError, variable_names

    defaults = Settings.from_env({})
    assert (defaults.worker_class, defaults.worker_connections) == ("gevent", 1000)
    chosen = Settings.from_env(
        {"DEVICELAB_WORKER_CLASS": "gthread", "DEVICELAB_WORKER_CONNECTIONS": "200"}
    )
    assert (chosen.worker_class, chosen.worker_connections) == ("gthread", 200)
    assert WORKER_CLASSES["gevent"].endswith(".JsonErrorsGeventWorker")
    for name, bad in [
        ("DEVICELAB_WORKER_CLASS", "eventlet"),
        ("DEVICELAB_WORKER_CONNECTIONS", "0"),
    ]:
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: bad})
    assert {"DEVICELAB_WORKER_CLASS", "DEVICELAB_WORKER_CONNECTIONS"} <= variable_names()
    assert defaults.active_requests == 4
    assert Settings.from_env({"DEVICELAB_ACTIVE_REQUESTS": "16"}).active_requests == 16
    with pytest.raises(SettingsError, match="DEVICELAB_ACTIVE_REQUESTS"):
        Settings.from_env({"DEVICELAB_ACTIVE_REQUESTS": "0"})
    assert "DEVICELAB_ACTIVE_REQUESTS" in variable_names()


def test_a_gevent_worker_runs_a_few_rest_requests_at_once_and_every_stream(monkeypatch) -> None:
    """Requests beyond ACTIVE_REQUESTS wait their turn (so the change reader's turn comes
    soon); a stream never waits and never takes a turn from the REST requests."""
    import gevent
    from gunicorn.workers.ggevent import GeventWorker

    from entrypoints import gunicorn_worker

    running, most = [0], [0]

    def served(self, listener_name, req, sock, addr):
        running[0] += 1
        most[0] = max(most[0], running[0])
        gevent.sleep(0.01)  # the request waits for the database
        running[0] -= 1

    monkeypatch.setattr(GeventWorker, "handle_request", served)
    worker = gunicorn_worker.JsonErrorsGeventWorker.__new__(gunicorn_worker.JsonErrorsGeventWorker)
    worker.running = gunicorn_worker.TakingTurns(gunicorn_worker.ACTIVE_REQUESTS)

    class Request:
        def __init__(self, path: str) -> None:
            self.path = path

    def serve(path: str):
        return gevent.spawn(worker.handle_request, "api", Request(path), None, None)

    gevent.joinall([serve("/api/devices") for _ in range(20)], timeout=10)
    assert most[0] == gunicorn_worker.ACTIVE_REQUESTS
    most[0] = 0
    gevent.joinall(
        [serve("/api/events") for _ in range(20)] + [serve("/api/devices") for _ in range(20)],
        timeout=10,
    )
    assert most[0] == 20 + gunicorn_worker.ACTIVE_REQUESTS
    # a run's log stream is a stream too: a few followers must not stop the REST requests
    most[0] = 0
    gevent.joinall(
        [serve("/api/test-runs/r1/logs/stream") for _ in range(8)]
        + [serve("/api/devices") for _ in range(8)],
        timeout=10,
    )
    assert most[0] == 8 + gunicorn_worker.ACTIVE_REQUESTS


def test_rest_requests_beyond_the_limit_are_let_in_in_the_order_they_came() -> None:
    """A place freed goes to the longest waiting, never to a newcomer (the one that freed it
    coming straight back with its connection's next request included)."""
    import gevent

    from entrypoints.gunicorn_worker import TakingTurns

    turns, order = TakingTurns(1), []

    def request(name: str, again: bool = False) -> None:
        with turns:
            order.append(name)
            gevent.sleep(0.01)
        if again:  # the next request on the same keep-alive connection, at once
            with turns:
                order.append(f"{name} again")

    first = gevent.spawn(request, "first", again=True)
    gevent.sleep(0)  # it is inside
    waiting = [gevent.spawn(request, f"waiting {n}") for n in range(3)]
    gevent.joinall([first, *waiting], timeout=10)
    assert order == ["first", "waiting 0", "waiting 1", "waiting 2", "first again"]
