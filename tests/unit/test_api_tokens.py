"""API tokens and service accounts on the in-memory auth store: the token's form and what is
stored of it, scope narrowing the owner's current role, expiry, revocation, the throttled
record of use, and what a token may not do."""

from __future__ import annotations

from datetime import timedelta

import pytest
from auth_world import DAY, PASSWORD, AuthWorld

from application.auth.api_tokens import (
    API_TOKEN_LENGTH,
    MAX_TOKENS_PER_USER,
    api_token_digest,
    is_well_formed_api_token,
    new_api_token,
)
from application.auth.errors import Forbidden, InvalidCredentials, NotWithApiToken, Unauthenticated
from application.auth.ports import NEVER, Principal
from application.auth.users import UserChanges
from application.errors import AlreadyExists, NotFound
from domain.api_tokens import TokenPolicy, TokenScope
from domain.errors import InvalidTransition, InvalidValue
from domain.users import Permission


@pytest.fixture
def world() -> AuthWorld:
    world = AuthWorld()
    world.add_user("root@lab.example", "admin")
    world.add_user("ada@lab.example", "engineer")
    return world


def session_of(world: AuthWorld, email: str) -> Principal:
    return world.principal(world.sign_in(email).token)


@pytest.fixture
def ada(world: AuthWorld) -> Principal:
    return session_of(world, "ada@lab.example")


@pytest.fixture
def root(world: AuthWorld) -> Principal:
    return session_of(world, "root@lab.example")


# -- the token's form ----------------------------------------------------------------------


def test_a_token_has_the_prefix_a_fixed_length_and_a_checksum() -> None:
    tokens = {new_api_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert token.startswith("dlp_") and len(token) == API_TOKEN_LENGTH
        assert token[4:].isalnum() and is_well_formed_api_token(token)
    token = tokens.pop()
    typo = token[:10] + ("a" if token[10] != "a" else "b") + token[11:]
    assert not is_well_formed_api_token(typo)  # one wrong character: the checksum says so
    assert not is_well_formed_api_token(token + "x")
    assert not is_well_formed_api_token("dlq_" + token[4:])


def test_only_the_digest_is_stored_and_the_secret_is_shown_once(world, ada) -> None:
    created = world.make_token(ada, "read")
    [stored] = world.store.api_tokens.values()
    assert stored.token_hash == api_token_digest(created.secret)
    assert created.secret not in repr(world.store)
    assert world.list_api_tokens(ada).items[0].id == created.token.id
    assert not hasattr(world.list_api_tokens(ada).items[0], "secret")


# -- scope and the owner's role --------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "allowed", "refused"),
    [
        ("read", {Permission.READ}, {Permission.RUN_TESTS, Permission.EDIT_CATALOG}),
        ("run", {Permission.READ, Permission.RUN_TESTS}, {Permission.EDIT_CATALOG}),
        ("full", {Permission.RUN_TESTS, Permission.EDIT_CATALOG}, {Permission.MANAGE_USERS}),
    ],
)
def test_the_scope_narrows_what_the_owners_role_allows(world, ada, scope, allowed, refused):
    principal = world.verify(world.make_token(ada, scope).secret)
    assert principal.scope is TokenScope(scope) and principal.via_api_token
    assert principal.session_id == "" and principal.user_id == ada.user_id
    assert all(principal.can(p) for p in allowed)
    assert not any(principal.can(p) for p in refused)  # an engineer may not manage users


def test_a_demoted_owners_token_loses_its_powers_at_once(world, ada, root) -> None:
    token = world.make_token(ada, "full").secret
    assert world.verify(token).can(Permission.RUN_TESTS)
    world.update_user(ada.user_id, UserChanges(role="viewer"))
    principal = world.verify(token)
    assert principal.can(Permission.READ) and not principal.can(Permission.RUN_TESTS)
    world.update_user(ada.user_id, UserChanges(role="admin"))
    assert world.verify(token).can(Permission.MANAGE_USERS)  # full means the role, whatever


def test_a_disabled_owners_tokens_are_refused_until_enabled_again(world, ada) -> None:
    token = world.make_token(ada, "run").secret
    world.update_user(ada.user_id, UserChanges(disabled=True))
    with pytest.raises(Unauthenticated):
        world.verify(token)
    world.update_user(ada.user_id, UserChanges(disabled=False))
    assert world.verify(token).user_id == ada.user_id


# -- expiry --------------------------------------------------------------------------------


def test_a_token_ends_at_its_expiry(world, ada) -> None:
    created = world.make_token(ada, "read", days=7)
    assert created.token.expires_at == world.clock.now() + timedelta(days=7)
    assert world.verify(created.secret).session_expires_at == created.token.expires_at
    world.clock.advance(7 * DAY - 1)
    world.verify(created.secret)
    world.clock.advance(1)
    with pytest.raises(Unauthenticated):
        world.verify(created.secret)
    assert [t.id for t in world.list_api_tokens(ada).items] == [created.token.id]  # still shown


@pytest.mark.parametrize("days", [0, -1, 91])
def test_an_expiry_beyond_the_servers_maximum_is_refused(world, ada, days) -> None:
    with pytest.raises(InvalidValue) as invalid:
        world.make_token(ada, "read", days=days)
    assert invalid.value.field == "expires_in_days"
    assert world.store.api_tokens == {}


def test_no_expiry_only_where_the_admin_allows_it(world, ada) -> None:
    with pytest.raises(InvalidValue, match="an admin can allow"):
        world.make_token(ada, "read", days=None)
    world.create_api_token.policy = TokenPolicy(max_days=90, allow_no_expiry=True)
    created = world.make_token(ada, "read", days=None)
    assert created.token.expires_at is None
    world.clock.advance(3650 * DAY)
    assert world.verify(created.secret).session_expires_at == NEVER


def test_an_unknown_scope_is_refused(world, ada) -> None:
    with pytest.raises(InvalidValue) as invalid:
        world.make_token(ada, "admin")
    assert invalid.value.field == "scope"


# -- revocation and listing ------------------------------------------------------------------


def test_a_revoked_token_is_refused_and_no_longer_listed(world, ada) -> None:
    first, second = world.make_token(ada, "read"), world.make_token(ada, "run")
    world.revoke_api_token(ada, first.token.id)
    with pytest.raises(Unauthenticated):
        world.verify(first.secret)
    assert [t.id for t in world.list_api_tokens(ada).items] == [second.token.id]
    with pytest.raises(NotFound):
        world.revoke_api_token(ada, first.token.id)  # once is enough


def test_others_tokens_are_not_found_but_an_admin_sees_and_revokes_them(world, ada, root):
    created = world.make_token(ada, "run")
    bob = world.add_user("bob@lab.example", "engineer")
    bob_session = session_of(world, bob.email)
    with pytest.raises(NotFound):
        world.revoke_api_token(bob_session, created.token.id)
    with pytest.raises(Forbidden):
        world.list_api_tokens(bob_session, ada.user_id)
    assert [t.id for t in world.list_api_tokens(root, ada.user_id).items] == [created.token.id]
    world.revoke_api_token(root, created.token.id)
    with pytest.raises(Unauthenticated):
        world.verify(created.secret)


def test_tokens_list_newest_first_in_pages(world, ada) -> None:
    made = []
    for n in range(3):
        made.append(world.make_token(ada, "read", name=f"t{n}").token.id)
        world.clock.advance(1)
    page = world.list_api_tokens(ada, limit=2)
    rest = world.list_api_tokens(ada, limit=2, cursor=page.next_cursor)
    assert [t.id for t in page.items + rest.items] == made[::-1]


def test_a_user_may_hold_only_so_many_tokens(world, ada) -> None:
    for _ in range(MAX_TOKENS_PER_USER):
        world.make_token(ada, "read")
    with pytest.raises(InvalidTransition, match="revoke some"):
        world.make_token(ada, "read")


# -- last use --------------------------------------------------------------------------------


def test_the_last_use_is_written_at_most_once_a_minute(world, ada) -> None:
    created = world.make_token(ada, "read")
    assert created.token.last_used_at is None
    start = world.clock.now()
    world.verify(created.secret)
    world.clock.advance(30)
    world.verify(created.secret)  # a read, not a write
    [stored] = world.store.api_tokens.values()
    assert stored.last_used_at == start
    world.clock.advance(31)
    world.verify(created.secret)
    assert world.store.api_tokens[created.token.id].last_used_at == world.clock.now()


def test_a_use_does_not_undo_a_revocation(world, ada) -> None:
    created = world.make_token(ada, "read")
    with world.new_uow() as uow:
        uow.api_tokens.record_use(created.token.id, world.clock.now())  # after the revoke's read
        token = uow.api_tokens.get(created.token.id)
        token.revoke(world.clock.now())
        uow.api_tokens.update(token)
        uow.api_tokens.record_use(created.token.id, world.clock.now())
        uow.commit()
    assert world.store.api_tokens[created.token.id].revoked_at is not None


# -- what a token may not do -----------------------------------------------------------------


def test_a_token_cannot_make_list_or_revoke_tokens(world, ada) -> None:
    created = world.make_token(ada, "full")
    holder = world.verify(created.secret)
    with pytest.raises(NotWithApiToken):
        world.make_token(holder, "full")
    with pytest.raises(NotWithApiToken):
        world.list_api_tokens(holder)
    with pytest.raises(NotWithApiToken):
        world.revoke_api_token(holder, created.token.id)


def test_a_session_token_still_opens_a_session(world) -> None:
    signed_in = world.sign_in("ada@lab.example")
    principal = world.verify(signed_in.token)
    assert principal.session_id == signed_in.session.id and not principal.via_api_token
    with pytest.raises(Unauthenticated):
        world.verify("dlp_" + signed_in.token)


# -- service accounts ------------------------------------------------------------------------


def test_a_service_account_cannot_sign_in_whatever_is_tried(world) -> None:
    account = world.add_service_account("ci-firmware")
    assert (account.email, account.service_account) == ("ci-firmware@service.invalid", True)
    for password in [PASSWORD, "!", "", account.password_hash]:
        with pytest.raises(InvalidCredentials):
            world.sign_in(account.email, password)


def test_an_admin_makes_tokens_for_a_service_account(world, root, ada) -> None:
    account = world.add_service_account("ci-firmware", "engineer")
    created = world.make_token(root, "run", user_id=account.id)
    assert (created.token.user_id, created.token.created_by) == (account.id, root.user_id)
    principal = world.verify(created.secret)
    assert principal.email == "ci-firmware@service.invalid" and principal.can(Permission.RUN_TESTS)
    assert [t.id for t in world.list_api_tokens(root, account.id).items] == [created.token.id]
    with pytest.raises(Forbidden):
        world.make_token(ada, "run", user_id=account.id)  # only an admin
    with pytest.raises(InvalidTransition, match="makes their own"):
        world.make_token(root, "run", user_id=ada.user_id)  # not for a person
    with pytest.raises(NotFound):
        world.make_token(root, "run", user_id="nobody")


def test_a_service_account_has_no_password_to_reset(world, root) -> None:
    account = world.add_service_account()
    with pytest.raises(InvalidTransition, match="no password"):
        world.reset_password(account.id, by=root.user_id)


def test_a_service_account_admin_is_not_the_admin_that_remains(world, root) -> None:
    world.add_service_account("provisioning", "admin")
    with pytest.raises(InvalidTransition, match="admin must remain"):
        world.update_user(root.user_id, UserChanges(role="engineer"))


def test_service_account_names_make_addresses_or_need_one(world) -> None:
    with pytest.raises(InvalidValue) as invalid:
        world.add_service_account("Firmware CI")
    assert invalid.value.field == "email"
    world.add_service_account("ci-firmware")
    with pytest.raises(AlreadyExists):
        world.add_service_account("CI-Firmware")


def test_the_token_settings_come_from_the_environment() -> None:
    from entrypoints.settings import Settings, SettingsError, variable_names

    default = Settings.from_env({})
    assert (default.token_max_days, default.token_allow_no_expiry) == (90, False)
    chosen = Settings.from_env(
        {"DEVICELAB_TOKEN_MAX_DAYS": "365", "DEVICELAB_TOKEN_ALLOW_NO_EXPIRY": "true"}
    )
    assert (chosen.token_max_days, chosen.token_allow_no_expiry) == (365, True)
    for bad in [{"DEVICELAB_TOKEN_MAX_DAYS": "0"}, {"DEVICELAB_TOKEN_ALLOW_NO_EXPIRY": "maybe"}]:
        with pytest.raises(SettingsError):
            Settings.from_env(bad)
    assert {"DEVICELAB_TOKEN_MAX_DAYS", "DEVICELAB_TOKEN_ALLOW_NO_EXPIRY"} <= variable_names()
