"""The auth use cases wired to the in-memory auth store, a settable clock and a real (but
cheap) Argon2 hasher; shared by the tests/unit/test_auth_*.py modules."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.auth.passwords import cheap_password_hasher
from adapters.auth.tokens import SessionTokenSigner
from adapters.clocks import SettableClock
from adapters.identifiers import SequentialIds
from adapters.persistence.auth_in_memory import InMemoryAuthStore, InMemoryAuthUnitOfWork
from application.auth.api_tokens import (
    AuthenticateApiToken,
    CreateApiToken,
    CreateApiTokenRequest,
    CreatedApiToken,
    ListApiTokens,
    RevokeApiToken,
    VerifyBearerToken,
)
from application.auth.ports import Principal
from application.auth.service_accounts import CreateServiceAccount, CreateServiceAccountRequest
from application.auth.sessions import (
    Authenticate,
    EndOtherSessions,
    GetSession,
    ListSessions,
    Login,
    LoginRequest,
    LoginResult,
    Logout,
    PurgeExpiredSessions,
    RevokeSession,
)
from application.auth.users import (
    ChangePassword,
    CreateUser,
    CreateUserRequest,
    GetUser,
    ListUsers,
    ResetPassword,
    UpdateUser,
)
from domain.api_tokens import TokenPolicy
from domain.users import SessionPolicy, User

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
HOUR = 3600
DAY = 24 * HOUR
SECRET_KEY = "unit-tests-secret-key-0123456789-abcdefghijklmnop"
PASSWORD = "correct horse battery"


class AuthWorld:
    policy = SessionPolicy.from_seconds(12 * HOUR, 7 * DAY)

    def __init__(self) -> None:
        self.store = InMemoryAuthStore()
        self.clock = SettableClock(T0)
        self.ids = SequentialIds("auth")
        self.hasher = cheap_password_hasher()
        self.signer = SessionTokenSigner(SECRET_KEY)
        uow = self.new_uow
        self.login = Login(uow, self.hasher, self.signer, self.clock, self.ids, self.policy)
        self.authenticate = Authenticate(uow, self.signer, self.clock, self.policy)
        self.logout = Logout(uow)
        self.get_session = GetSession(uow)
        self.list_sessions = ListSessions(uow, self.clock)
        self.revoke_session = RevokeSession(uow)
        self.end_other_sessions = EndOtherSessions(uow)
        self.purge_expired = PurgeExpiredSessions(uow, self.clock)
        self.create_user = CreateUser(uow, self.hasher, self.clock, self.ids)
        self.list_users = ListUsers(uow)
        self.get_user = GetUser(uow)
        self.update_user = UpdateUser(uow, self.clock)
        self.change_password = ChangePassword(uow, self.hasher, self.clock)
        self.reset_password = ResetPassword(uow, self.hasher, self.clock)
        self.token_policy = TokenPolicy(max_days=90)
        self.create_api_token = CreateApiToken(uow, self.clock, self.ids, self.token_policy)
        self.list_api_tokens = ListApiTokens(uow)
        self.revoke_api_token = RevokeApiToken(uow, self.clock)
        self.authenticate_api_token = AuthenticateApiToken(uow, self.clock)
        self.verify = VerifyBearerToken(self.authenticate, self.authenticate_api_token)
        self.create_service_account = CreateServiceAccount(uow, self.clock, self.ids)

    def new_uow(self, read_only: bool = False) -> InMemoryAuthUnitOfWork:
        return InMemoryAuthUnitOfWork(self.store, read_only)

    def add_user(
        self, email: str = "ada@lab.example", role: str = "engineer", password: str = PASSWORD
    ) -> User:
        return self.create_user(CreateUserRequest(email, email.split("@")[0], role, password))

    def sign_in(self, email: str = "ada@lab.example", password: str = PASSWORD) -> LoginResult:
        return self.login(LoginRequest(email, password, client_ip="10.0.0.1"))

    def principal(self, token: str) -> Principal:
        return self.authenticate(token)

    def make_token(
        self,
        principal: Principal,
        scope: str = "full",
        days: int | None = 30,
        user_id: str | None = None,
        name: str = "ci",
    ) -> CreatedApiToken:
        return self.create_api_token(
            principal, CreateApiTokenRequest(name, scope, days, user_id=user_id)
        )

    def add_service_account(self, name: str = "ci-firmware", role: str = "engineer") -> User:
        return self.create_service_account(CreateServiceAccountRequest(name, role))
