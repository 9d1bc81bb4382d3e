"""User accounts: creating them, passwords (policy, change), roles, disabling, and what each
role is allowed to do."""

from __future__ import annotations

import pytest
from auth_world import PASSWORD, AuthWorld

from application.auth.errors import InvalidCredentials, Unauthenticated
from application.auth.users import ChangePasswordRequest, CreateUserRequest, UserChanges
from application.errors import AlreadyExists, NotFound
from domain.errors import InvalidTransition, InvalidValue
from domain.users import (
    ROLE_PERMISSIONS,
    Permission,
    Role,
    normalize_email,
    role_allows,
    roles_with,
)


@pytest.fixture
def world() -> AuthWorld:
    world = AuthWorld()
    world.add_user("root@lab.example", "admin")
    return world


# -- creating users -------------------------------------------------------------------------


def test_a_created_user_can_sign_in(world: AuthWorld) -> None:
    user = world.add_user("Ada@Lab.example", "viewer", "s3cret-enough")
    assert (user.email, user.name, user.role) == ("ada@lab.example", "Ada", Role.VIEWER)
    assert "s3cret-enough" not in user.password_hash
    assert user.password_hash.startswith("$argon2id$")
    assert world.sign_in("ada@lab.example", "s3cret-enough").user.id == user.id


def test_emails_are_unique_whatever_their_case(world: AuthWorld) -> None:
    with pytest.raises(AlreadyExists) as conflict:
        world.add_user("ROOT@lab.example")
    assert conflict.value.errors == {"email": ["'root@lab.example' is already taken"]}


@pytest.mark.parametrize(
    ("field", "request_"),
    [
        ("email", CreateUserRequest("no-at-sign", "x", "viewer", PASSWORD)),
        ("email", CreateUserRequest("a b@lab.example", "x", "viewer", PASSWORD)),
        ("email", CreateUserRequest("@lab.example", "x", "viewer", PASSWORD)),
        ("email", CreateUserRequest("a" * 250 + "@lab.example", "x", "viewer", PASSWORD)),
        ("name", CreateUserRequest("x@lab.example", "  ", "viewer", PASSWORD)),
        ("role", CreateUserRequest("x@lab.example", "x", "superuser", PASSWORD)),
        ("password", CreateUserRequest("x@lab.example", "x", "viewer", "7 chars")),
        ("password", CreateUserRequest("x@lab.example", "x", "viewer", "x" * 129)),
    ],
)
def test_invalid_user_data_is_refused_naming_the_field(
    world: AuthWorld, field: str, request_: CreateUserRequest
) -> None:
    with pytest.raises(InvalidValue) as invalid:
        world.create_user(request_)
    assert invalid.value.field == field
    assert len(world.store.users) == 1


@pytest.mark.parametrize("length", [8, 72, 73, 128])
def test_passwords_of_8_to_128_characters_are_accepted_whole(world: AuthWorld, length: int) -> None:
    password = ("pässwörd" * 20)[:length]
    world.add_user("long@lab.example", "viewer", password)
    assert world.sign_in("long@lab.example", password)
    # nothing is truncated: changing only the last character makes it another password
    with pytest.raises(InvalidCredentials):
        world.sign_in("long@lab.example", password[:-1] + "#")


def test_multibyte_passwords_count_characters_not_bytes(world: AuthWorld) -> None:
    password = "🔑" * 128  # 512 bytes in UTF-8
    world.add_user("emoji@lab.example", "viewer", password)
    assert world.sign_in("emoji@lab.example", password)


def test_users_are_listed_by_email_a_page_at_a_time(world: AuthWorld) -> None:
    for name in ["carol", "alice", "bob"]:
        world.add_user(f"{name}@lab.example", "viewer")
    first = world.list_users(limit=2)
    assert [u.email for u in first.items] == ["alice@lab.example", "bob@lab.example"]
    second = world.list_users(limit=2, cursor=first.next_cursor)
    assert [u.email for u in second.items] == ["carol@lab.example", "root@lab.example"]
    assert second.next_cursor is None


# -- changing users -------------------------------------------------------------------------


def test_role_and_name_changes_apply_to_existing_sessions_at_once(world: AuthWorld) -> None:
    ada = world.add_user("ada@lab.example", "viewer")
    token = world.sign_in("ada@lab.example").token
    world.update_user(ada.id, UserChanges(role="engineer", name="Ada Lovelace"))
    principal = world.authenticate(token)
    assert (principal.role, principal.name) == (Role.ENGINEER, "Ada Lovelace")


def test_disabling_a_user_ends_all_their_sessions(world: AuthWorld) -> None:
    ada = world.add_user("ada@lab.example")
    tokens = [world.sign_in("ada@lab.example").token for _ in range(3)]
    world.update_user(ada.id, UserChanges(disabled=True))
    for token in tokens:
        with pytest.raises(Unauthenticated):
            world.authenticate(token)
    assert world.store.sessions == {}

    world.update_user(ada.id, UserChanges(disabled=False))
    assert world.sign_in("ada@lab.example").user.id == ada.id


def test_the_last_enabled_admin_can_be_neither_demoted_nor_disabled(world: AuthWorld) -> None:
    root = world.list_users().items[0]
    for changes in (UserChanges(role="engineer"), UserChanges(disabled=True)):
        with pytest.raises(InvalidTransition, match="admin must remain"):
            world.update_user(root.id, changes)
    assert world.get_user(root.id).is_active_admin

    second = world.add_user("second@lab.example", "admin")
    world.update_user(root.id, UserChanges(role="viewer"))  # fine: another admin remains
    with pytest.raises(InvalidTransition):
        world.update_user(second.id, UserChanges(disabled=True))


def test_updating_an_unknown_user_is_not_found(world: AuthWorld) -> None:
    with pytest.raises(NotFound):
        world.update_user("nobody", UserChanges(name="x"))


# -- changing one's password ----------------------------------------------------------------


def test_changing_the_password_ends_every_other_session(world: AuthWorld) -> None:
    world.add_user("ada@lab.example")
    here, elsewhere, stolen = (world.sign_in("ada@lab.example") for _ in range(3))
    principal = world.authenticate(here.token)
    ended = world.change_password(principal, ChangePasswordRequest(PASSWORD, "a new passphrase"))
    assert ended == 2
    assert world.authenticate(here.token).session_id == here.session.id
    for other in (elsewhere, stolen):
        with pytest.raises(Unauthenticated):
            world.authenticate(other.token)
    with pytest.raises(InvalidCredentials):
        world.sign_in("ada@lab.example", PASSWORD)
    assert world.sign_in("ada@lab.example", "a new passphrase")


@pytest.mark.parametrize(
    ("current", "new", "field"),
    [
        ("not my password", "a new passphrase", "current_password"),
        ("x" * 500, "a new passphrase", "current_password"),
        (PASSWORD, "short", "new_password"),
        (PASSWORD, "x" * 129, "new_password"),
        (PASSWORD, PASSWORD, "new_password"),
    ],
)
def test_a_refused_password_change_changes_nothing(
    world: AuthWorld, current: str, new: str, field: str
) -> None:
    world.add_user("ada@lab.example")
    here, other = world.sign_in("ada@lab.example"), world.sign_in("ada@lab.example")
    with pytest.raises(InvalidValue) as refused:
        world.change_password(world.authenticate(here.token), ChangePasswordRequest(current, new))
    assert refused.value.field == field
    assert world.authenticate(other.token)
    assert world.sign_in("ada@lab.example", PASSWORD)


# -- an admin's password reset -------------------------------------------------------------


def test_a_reset_gives_a_temporary_password_and_ends_every_session(world: AuthWorld) -> None:
    admin = world.sign_in("root@lab.example")
    ada = world.add_user("ada@lab.example")
    sessions = [world.sign_in("ada@lab.example") for _ in range(2)]

    reset = world.reset_password(ada.id, by=admin.user.id)
    assert reset.sessions_ended == 2 and reset.user.must_change_password
    assert len(reset.temporary_password) >= 12
    assert reset.temporary_password not in world.store.users[ada.id].password_hash
    for ended in sessions:
        with pytest.raises(Unauthenticated):
            world.authenticate(ended.token)
    with pytest.raises(InvalidCredentials):
        world.sign_in("ada@lab.example", PASSWORD)
    assert world.authenticate(admin.token).email == "root@lab.example"  # the admin stays

    signed_in = world.sign_in("ada@lab.example", reset.temporary_password)
    assert world.authenticate(signed_in.token).password_change_due is True


def test_changing_the_temporary_password_lifts_the_restriction(world: AuthWorld) -> None:
    ada = world.add_user("ada@lab.example")
    temporary = world.reset_password(ada.id).temporary_password
    signed_in = world.sign_in("ada@lab.example", temporary)
    world.change_password(
        world.authenticate(signed_in.token), ChangePasswordRequest(temporary, "my own passphrase")
    )
    principal = world.authenticate(signed_in.token)  # the same session goes on
    assert principal.password_change_due is False
    assert world.get_user(ada.id).must_change_password is False
    with pytest.raises(InvalidCredentials):
        world.sign_in("ada@lab.example", temporary)
    assert world.sign_in("ada@lab.example", "my own passphrase")


def test_every_reset_makes_a_new_temporary_password(world: AuthWorld) -> None:
    ada = world.add_user("ada@lab.example")
    first, second = world.reset_password(ada.id), world.reset_password(ada.id)
    assert first.temporary_password != second.temporary_password
    with pytest.raises(InvalidCredentials):
        world.sign_in("ada@lab.example", first.temporary_password)


def test_rehashing_at_sign_in_keeps_the_password_temporary(world: AuthWorld) -> None:
    from adapters.auth.passwords import Argon2PasswordHasher

    ada = world.add_user("ada@lab.example")
    temporary = world.reset_password(ada.id).temporary_password
    old_hash = world.store.users[ada.id].password_hash
    world.login.hasher = Argon2PasswordHasher(memory_cost_kib=16, time_cost=1)
    signed_in = world.sign_in("ada@lab.example", temporary)
    assert world.store.users[ada.id].password_hash != old_hash  # rehashed
    assert world.authenticate(signed_in.token).password_change_due is True


def test_an_admin_cannot_reset_their_own_password(world: AuthWorld) -> None:
    admin = world.sign_in("root@lab.example")
    with pytest.raises(InvalidTransition):
        world.reset_password(admin.user.id, by=admin.user.id)
    assert world.authenticate(admin.token).password_change_due is False
    assert world.sign_in("root@lab.example", PASSWORD)


def test_resetting_an_unknown_user_is_not_found(world: AuthWorld) -> None:
    with pytest.raises(NotFound):
        world.reset_password("nobody")


# -- roles and permissions ------------------------------------------------------------------

EXPECTED = {
    # permission: (admin, engineer, viewer)
    Permission.READ: (True, True, True),
    Permission.MANAGE_USERS: (True, False, False),
    Permission.MANAGE_DEVICES: (True, False, False),
    Permission.OPERATE_DEVICES: (True, True, False),
    Permission.EDIT_CATALOG: (True, True, False),
    Permission.RUN_TESTS: (True, True, False),
    Permission.DEFINE_EXECUTION: (True, False, False),
    Permission.MANAGE_HOLDS: (True, False, False),
    Permission.MANAGE_HEALTH: (True, False, False),
    Permission.MANAGE_RUNNERS: (True, False, False),
}


@pytest.mark.parametrize("permission", list(Permission))
def test_the_permission_table(permission: Permission) -> None:
    allowed = tuple(
        role_allows(role, permission) for role in (Role.ADMIN, Role.ENGINEER, Role.VIEWER)
    )
    assert allowed == EXPECTED[permission]


def test_every_permission_is_in_the_table_and_admins_have_them_all() -> None:
    assert set(EXPECTED) == set(Permission)
    assert ROLE_PERMISSIONS[Role.ADMIN] == frozenset(Permission)
    assert roles_with(Permission.MANAGE_USERS) == [Role.ADMIN]


def test_a_disabled_user_may_do_nothing(world: AuthWorld) -> None:
    root = world.list_users().items[0]
    assert root.can(Permission.MANAGE_USERS)
    root.disabled = True
    assert not any(root.can(p) for p in Permission)


@pytest.mark.parametrize(
    ("raw", "normal"), [(" Ada@Lab.EXAMPLE ", "ada@lab.example"), ("a@b", "a@b")]
)
def test_email_normalization(raw: str, normal: str) -> None:
    assert normalize_email(raw) == normal
