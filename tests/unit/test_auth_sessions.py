"""Signing in and out, and the life of a session: idle timeout (sliding), absolute lifetime,
logout, revocation, and the tokens that stand for sessions."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from auth_world import DAY, HOUR, PASSWORD, T0, AuthWorld

from application.auth.errors import InvalidCredentials, Unauthenticated
from application.auth.sessions import LoginRequest, token_digest
from application.auth.users import UserChanges
from application.errors import NotFound
from domain.errors import InvalidTransition, InvalidValue
from domain.users import RENEWAL_GRANULARITY, Session, SessionPolicy


@pytest.fixture
def world() -> AuthWorld:
    world = AuthWorld()
    world.add_user("ada@lab.example", "engineer")
    return world


# -- login ----------------------------------------------------------------------------------


def test_login_opens_a_session_the_token_stands_for(world: AuthWorld) -> None:
    result = world.sign_in()
    assert result.user.email == "ada@lab.example"
    assert result.session.expires_at == T0 + timedelta(hours=12)
    assert result.session.absolute_expires_at == T0 + timedelta(days=7)

    principal = world.principal(result.token)
    assert (principal.email, principal.role.value) == ("ada@lab.example", "engineer")
    assert principal.session_id == result.session.id


def test_login_is_case_insensitive_on_the_email(world: AuthWorld) -> None:
    assert world.sign_in("  ADA@Lab.Example ").user.email == "ada@lab.example"


def test_tokens_carry_at_least_128_random_bits_and_the_store_keeps_only_a_digest(
    world: AuthWorld,
) -> None:
    tokens = {world.sign_in().token for _ in range(20)}
    assert len(tokens) == 20
    for token in tokens:
        secret = world.signer.unsign(token)
        assert secret is not None and len(secret) * 6 >= 128  # url-safe base64: 6 bits a char
        stored = world.store.sessions.values()
        assert all(token not in s.token_hash and secret != s.token_hash for s in stored)
        assert any(s.token_hash == token_digest(secret) for s in stored)


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("ada@lab.example", "wrong password"),
        ("nobody@lab.example", PASSWORD),
        ("not an email", PASSWORD),
        ("ada@lab.example", "x" * 129),
        ("ada@lab.example", ""),
    ],
)
def test_every_failed_login_looks_the_same(world: AuthWorld, email: str, password: str) -> None:
    with pytest.raises(InvalidCredentials) as failure:
        world.login(LoginRequest(email, password))
    assert (failure.value.code, failure.value.message) == (
        "invalid_credentials",
        "wrong email or password",
    )
    assert world.store.sessions == {}


def test_a_disabled_user_cannot_sign_in_even_with_the_right_password(world: AuthWorld) -> None:
    world.add_user("root@lab.example", "admin")
    ada = world.get_user("auth-000001")
    world.update_user(ada.id, UserChanges(disabled=True))
    with pytest.raises(InvalidCredentials):
        world.sign_in()


def test_login_attempts_are_logged_without_the_password(
    world: AuthWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devicelab.auth")
    world.sign_in()
    with pytest.raises(InvalidCredentials):
        world.login(LoginRequest("ada@lab.example", "a wrong guess", client_ip="10.9.8.7"))
    with pytest.raises(InvalidCredentials):
        world.login(LoginRequest("eve@lab.example", "another guess"))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert "succeeded" in lines[0] and "ada@lab.example" in lines[0]
    assert "failed" in lines[1] and "10.9.8.7" in lines[1] and "wrong password" in lines[1]
    assert "failed" in lines[2] and "unknown email" in lines[2]
    assert not any(p in caplog.text for p in (PASSWORD, "a wrong guess", "another guess"))


def test_an_unknown_email_costs_a_password_verification_too(world: AuthWorld) -> None:
    """The dummy hash makes both failures spend the time of one real verification."""
    verified: list[str] = []
    real_verify = world.hasher.verify

    def counting_verify(password_hash: str, password: str) -> bool:
        verified.append(password_hash)
        return real_verify(password_hash, password)

    world.hasher.verify = counting_verify  # type: ignore[method-assign]
    for email in ("ada@lab.example", "nobody@lab.example"):
        with pytest.raises(InvalidCredentials):
            world.login(LoginRequest(email, "wrong password"))
    assert len(verified) == 2
    assert verified[1] == world.hasher.dummy_hash
    assert world.hasher.verify(world.hasher.dummy_hash, "wrong password") is False


def test_a_login_with_outdated_hash_parameters_rehashes_the_password(world: AuthWorld) -> None:
    from adapters.auth.passwords import Argon2PasswordHasher

    old_hash = world.store.users["auth-000001"].password_hash
    world.login.hasher = Argon2PasswordHasher(memory_cost_kib=16, time_cost=1)
    world.sign_in()
    new_hash = world.store.users["auth-000001"].password_hash
    assert new_hash != old_hash and "m=16," in new_hash
    world.sign_in()  # and the new hash works
    assert world.store.users["auth-000001"].password_hash == new_hash


def test_login_cleans_up_expired_sessions(world: AuthWorld) -> None:
    world.sign_in()
    world.clock.advance(13 * HOUR)
    world.sign_in()
    assert len(world.store.sessions) == 1


# -- tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mangle",
    [
        # signature changed (not in its last character, whose low bits base64 ignores)
        lambda t: t[:-10] + ("A" if t[-10] != "A" else "B") + t[-9:],
        lambda t: ("A" if t[0] != "A" else "B") + t[1:],  # secret changed
        lambda t: t.split(".")[0],  # signature dropped
        lambda t: t + ".extra",
        lambda t: "",
        lambda t: "x" * 5000,
        lambda t: "ünïcødé.∑ignature",
    ],
)
def test_a_tampered_token_is_refused_without_looking_in_the_store(world: AuthWorld, mangle) -> None:
    token = world.sign_in().token

    class Untouchable:
        def __call__(self):
            raise AssertionError("the store was asked about a token with a bad signature")

    world.authenticate.uow = Untouchable()  # type: ignore[assignment]
    with pytest.raises(Unauthenticated):
        world.authenticate(mangle(token))


def test_a_token_signed_with_another_key_is_refused(world: AuthWorld) -> None:
    from adapters.auth.tokens import SessionTokenSigner

    secret = world.signer.unsign(world.sign_in().token)
    assert secret is not None
    forged = SessionTokenSigner("another-secret-key-0123456789-abcdefghijkl").sign(secret)
    with pytest.raises(Unauthenticated):
        world.authenticate(forged)


# -- expiry: idle (sliding) and absolute ----------------------------------------------------


def test_an_unused_session_ends_after_the_idle_timeout(world: AuthWorld) -> None:
    token = world.sign_in().token
    world.clock.advance(12 * HOUR - 1)
    world.authenticate(token)  # still alive one second before; this use slides it on
    world.clock.advance(12 * HOUR)
    with pytest.raises(Unauthenticated, match="expired"):
        world.authenticate(token)
    assert world.store.sessions == {}  # the expired session was deleted on sight


def test_exactly_at_the_idle_deadline_the_session_is_over(world: AuthWorld) -> None:
    token = world.sign_in().token
    world.clock.advance(12 * HOUR)
    with pytest.raises(Unauthenticated):
        world.authenticate(token)


def test_using_a_session_slides_its_idle_deadline(world: AuthWorld) -> None:
    token = world.sign_in().token
    for _ in range(10):  # 10 times 11 h: far beyond one idle timeout, never idle for 12 h
        world.clock.advance(11 * HOUR)
        principal = world.authenticate(token)
    assert principal.session_expires_at == world.clock.now() + timedelta(hours=12)


def test_no_use_extends_a_session_past_its_absolute_lifetime(world: AuthWorld) -> None:
    token = world.sign_in().token
    while world.clock.now() < T0 + timedelta(days=7) - timedelta(hours=1):
        world.clock.advance(HOUR)
        principal = world.authenticate(token)
    assert principal.session_expires_at == T0 + timedelta(days=7)
    world.clock.advance(HOUR)
    with pytest.raises(Unauthenticated):
        world.authenticate(token)


def test_renewals_are_written_at_most_once_a_minute(world: AuthWorld) -> None:
    token = world.sign_in().token
    session_id = world.authenticate(token).session_id
    world.clock.advance(30)
    world.authenticate(token)
    assert world.store.sessions[session_id].last_used_at == T0
    world.clock.advance(30)
    world.authenticate(token)
    assert world.store.sessions[session_id].last_used_at == T0 + RENEWAL_GRANULARITY


def test_short_idle_timeouts_renew_more_often_than_once_a_minute() -> None:
    policy = SessionPolicy(idle_timeout=timedelta(seconds=60), lifetime=timedelta(hours=1))
    session = Session.open("s", "u", "h", T0, policy)
    for step in range(1, 20):  # used every 50 s: never idle for a whole minute
        assert session.touch(T0 + timedelta(seconds=50 * step), policy)
    assert session.is_active(T0 + timedelta(seconds=50 * 19 + 59))


def test_touching_an_expired_session_is_refused() -> None:
    policy = SessionPolicy()
    session = Session.open("s", "u", "h", T0, policy)
    with pytest.raises(InvalidTransition):
        session.touch(T0 + timedelta(days=8), policy)


def test_idle_deadline_never_exceeds_the_lifetime_when_idle_is_longer() -> None:
    policy = SessionPolicy.from_seconds(idle_s=10 * DAY, lifetime_s=DAY)
    session = Session.open("s", "u", "h", T0, policy)
    assert session.expires_at == T0 + timedelta(days=1)


def test_a_policy_needs_positive_durations() -> None:
    with pytest.raises(InvalidValue):
        SessionPolicy.from_seconds(0, DAY)


def test_purge_removes_only_expired_sessions(world: AuthWorld) -> None:
    world.sign_in()
    world.clock.advance(6 * HOUR)
    fresh = world.sign_in().session
    world.clock.advance(7 * HOUR)  # the first is idle 13 h, the second 7 h
    assert world.purge_expired() == 1
    assert list(world.store.sessions) == [fresh.id]


# -- logout, listing and revoking -----------------------------------------------------------


def test_after_logout_the_token_is_dead(world: AuthWorld) -> None:
    token = world.sign_in().token
    world.logout(world.authenticate(token).session_id)
    with pytest.raises(Unauthenticated):
        world.authenticate(token)
    world.logout("gone already")  # idempotent


def test_logout_ends_only_that_session(world: AuthWorld) -> None:
    laptop, phone = world.sign_in().token, world.sign_in().token
    world.logout(world.authenticate(laptop).session_id)
    assert world.authenticate(phone).email == "ada@lab.example"


def test_one_lists_ones_own_live_sessions_newest_first(world: AuthWorld) -> None:
    world.add_user("bob@lab.example")
    first = world.sign_in().session
    world.clock.advance(60)
    second = world.sign_in().session
    world.sign_in("bob@lab.example")
    world.clock.advance(60)
    page = world.list_sessions(first.user_id)
    assert [s.id for s in page.items] == [second.id, first.id]

    paged = world.list_sessions(first.user_id, limit=1)
    assert [s.id for s in paged.items] == [second.id]
    rest = world.list_sessions(first.user_id, limit=1, cursor=paged.next_cursor)
    assert [s.id for s in rest.items] == [first.id] and rest.next_cursor is None

    world.clock.advance(12 * HOUR - 60)  # the first expires, the second too: both idle
    assert world.list_sessions(first.user_id).items == []


def test_revoking_one_of_ones_sessions_kills_its_token(world: AuthWorld) -> None:
    laptop, phone = world.sign_in(), world.sign_in()
    world.revoke_session(laptop.user.id, phone.session.id)
    with pytest.raises(Unauthenticated):
        world.authenticate(phone.token)
    assert world.authenticate(laptop.token).session_id == laptop.session.id


def test_another_users_session_cannot_be_revoked_or_even_seen(world: AuthWorld) -> None:
    world.add_user("bob@lab.example")
    ada, bob = world.sign_in(), world.sign_in("bob@lab.example")
    with pytest.raises(NotFound):
        world.revoke_session(ada.user.id, bob.session.id)
    assert world.authenticate(bob.token).email == "bob@lab.example"


def test_get_session_tells_the_user_and_the_session(world: AuthWorld) -> None:
    result = world.sign_in()
    view = world.get_session(world.authenticate(result.token))
    assert view.user.id == result.user.id
    assert view.session.id == result.session.id
    assert view.session.created_at == T0


def test_a_session_remembers_where_it_was_opened_from(world: AuthWorld) -> None:
    result = world.sign_in()  # from 10.0.0.1
    assert world.list_sessions(result.user.id).items[0].client_ip == "10.0.0.1"


def test_ending_all_other_sessions_keeps_only_this_one(world: AuthWorld) -> None:
    world.add_user("bob@lab.example")
    here, laptop, phone = world.sign_in(), world.sign_in(), world.sign_in()
    bob = world.sign_in("bob@lab.example")
    assert world.end_other_sessions(world.authenticate(here.token)) == 2
    for ended in (laptop, phone):
        with pytest.raises(Unauthenticated):
            world.authenticate(ended.token)
    assert world.authenticate(here.token).session_id == here.session.id
    assert world.authenticate(bob.token).email == "bob@lab.example"  # others' untouched
    assert [s.id for s in world.list_sessions(here.user.id).items] == [here.session.id]
