"""Use cases of API tokens: make one (shown once), list and revoke them, and verify one that
comes with a request.

A token is `dlp_` + 43 base62 characters of randomness (256 bits from `secrets`) + a 6
character CRC32 of them. The prefix lets secret scanners (and people) recognise a leaked
token; the checksum lets them, and this service, tell a real token from a look-alike without
asking anyone, so a mistyped token is refused before the store is asked.

The store keeps only the SHA-256 digest of the token. A password needs a slow hash (argon2)
because people choose guessable ones; a token is 256 random bits, which no number of
guesses at its digest will find, so a slow hash would add nothing but tens of milliseconds
to every API call. The digest is not keyed with the server's secret key either: rotating
that key ends every session, and should not also break every pipeline's token."""

from __future__ import annotations

import hashlib
import logging
import secrets
import string
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from application.auth.errors import Forbidden, NotWithApiToken, Unauthenticated
from application.auth.ports import AuthUnitOfWork, Principal
from application.auth.ports import AuthUnitOfWorkFactory as AuthUowFactory
from application.errors import NotFound
from application.pagination import Page, paginate
from application.ports import Clock, IdGenerator
from domain.api_tokens import ApiToken, TokenPolicy, TokenScope, parse_scope
from domain.errors import InvalidTransition
from domain.users import Permission, User

log = logging.getLogger("devicelab.auth")

API_TOKEN_PREFIX = "dlp_"
_BASE62 = string.digits + string.ascii_letters
_SECRET_CHARS = 43  # 62**43 > 2**256
_CHECKSUM_CHARS = 6  # 62**6 > 2**32
API_TOKEN_LENGTH = len(API_TOKEN_PREFIX) + _SECRET_CHARS + _CHECKSUM_CHARS
MAX_TOKENS_PER_USER = 100  # live (not revoked) ones; more is a leak waiting to happen

INVALID_API_TOKEN = "the API token is invalid, expired or revoked"


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECKSUM_CHARS)


def new_api_token() -> str:
    body = "".join(secrets.choice(_BASE62) for _ in range(_SECRET_CHARS))
    return API_TOKEN_PREFIX + body + _checksum(body)


def is_api_token(token: str) -> bool:
    """Whether a bearer token is meant as an API token (rather than a session token)."""
    return token.startswith(API_TOKEN_PREFIX)


def is_well_formed_api_token(token: str) -> bool:
    if len(token) != API_TOKEN_LENGTH or not is_api_token(token):
        return False
    rest = token[len(API_TOKEN_PREFIX) :]
    if any(c not in _BASE62 for c in rest):
        return False
    body, checksum = rest[:_SECRET_CHARS], rest[_SECRET_CHARS:]
    return secrets.compare_digest(_checksum(body), checksum)


def api_token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_key(token: ApiToken) -> tuple:
    return (token.created_at.isoformat(), token.id)


def refuse_api_tokens(principal: Principal) -> None:
    if principal.via_api_token:
        raise NotWithApiToken()


def _owner_for(uow: AuthUnitOfWork, principal: Principal, user_id: str | None) -> User:
    """The user whose tokens `principal` means: their own, or (for an admin) anyone's."""
    if user_id is None or user_id == principal.user_id:
        owner = uow.users.get(principal.user_id)
        if owner is None:
            raise Unauthenticated()
        return owner
    if not principal.can(Permission.MANAGE_USERS):
        raise Forbidden("only an admin may see or change another user's tokens")
    owner = uow.users.get(user_id)
    if owner is None:
        raise NotFound("user", user_id)
    return owner


@dataclass(frozen=True)
class CreateApiTokenRequest:
    name: str
    scope: TokenScope | str
    expires_in_days: int | None
    # whose token: None for one's own; an admin may name a service account
    user_id: str | None = None


@dataclass(frozen=True)
class CreatedApiToken:
    token: ApiToken
    secret: str  # the whole `dlp_…` token: shown in this answer only, stored nowhere


class CreateApiToken:
    """A new token for oneself, or (an admin) for a service account. Made only from a signed-in
    session: a token cannot make tokens, or one leaked token could keep itself alive forever.
    An admin cannot make tokens for another person, who makes their own."""

    def __init__(
        self, uow: AuthUowFactory, clock: Clock, ids: IdGenerator, policy: TokenPolicy
    ) -> None:
        self.uow, self.clock, self.ids, self.policy = uow, clock, ids, policy

    def __call__(self, principal: Principal, request: CreateApiTokenRequest) -> CreatedApiToken:
        refuse_api_tokens(principal)
        scope = parse_scope(str(request.scope))
        now = self.clock.now()
        expires_at = self.policy.expiry(now, request.expires_in_days)
        secret = new_api_token()
        with self.uow() as uow:
            owner = _owner_for(uow, principal, request.user_id)
            if owner.id != principal.user_id and not owner.service_account:
                raise InvalidTransition(
                    "tokens are made for oneself or for a service account; "
                    f"{owner.email} makes their own"
                )
            if owner.disabled:
                raise InvalidTransition(f"{owner.email} is disabled: enable them first")
            if len(uow.api_tokens.list_of(owner.id, MAX_TOKENS_PER_USER, None)) >= (
                MAX_TOKENS_PER_USER
            ):
                raise InvalidTransition(
                    f"{owner.email} has {MAX_TOKENS_PER_USER} tokens already: revoke some first"
                )
            token = ApiToken(
                id=self.ids.new_id(),
                user_id=owner.id,
                name=request.name,
                scope=scope,
                token_hash=api_token_digest(secret),
                created_at=now,
                expires_at=expires_at,
                created_by=principal.user_id,
            )
            uow.api_tokens.add(token)
            uow.commit()
        log.info(
            "API token %s (%s, scope %s) made for user %s by %s",
            token.id,
            token.name,
            token.scope.value,
            owner.id,
            principal.user_id,
        )
        return CreatedApiToken(token, secret)


class ListApiTokens:
    """One's own tokens (or, for an admin, any user's), newest first; revoked ones are gone,
    expired ones stay listed so their owner sees why a pipeline stopped."""

    def __init__(self, uow: AuthUowFactory) -> None:
        self.uow = uow

    def __call__(
        self,
        principal: Principal,
        user_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[ApiToken]:
        refuse_api_tokens(principal)
        with self.uow() as uow:
            owner = _owner_for(uow, principal, user_id)
            return paginate(
                "api_tokens",
                lambda n, after: uow.api_tokens.list_of(owner.id, n, after),
                token_key,
                limit,
                cursor,
            )


class RevokeApiToken:
    """End a token: refused from the next request on (by a backend that asks the auth service
    through its cache, up to DEVICELAB_AUTH_CACHE_S later). The owner or an admin may; anyone
    else's token is 'not found'."""

    def __init__(self, uow: AuthUowFactory, clock: Clock) -> None:
        self.uow, self.clock = uow, clock

    def __call__(self, principal: Principal, token_id: str) -> None:
        refuse_api_tokens(principal)
        with self.uow() as uow:
            token = uow.api_tokens.get(token_id)
            mine = token is not None and token.user_id == principal.user_id
            if token is None or token.revoked_at is not None:
                raise NotFound("API token", token_id)
            if not mine and not principal.can(Permission.MANAGE_USERS):
                raise NotFound("API token", token_id)
            token.revoke(self.clock.now())
            uow.api_tokens.update(token)
            uow.commit()
        log.info(
            "API token %s of user %s revoked by %s", token_id, token.user_id, principal.user_id
        )


class AuthenticateApiToken:
    """`dlp_…` → who holds it, with the owner's role as it is now and the token's scope. A
    disabled owner's tokens are refused (and work again if the owner is enabled again)."""

    def __init__(self, uow: AuthUowFactory, clock: Clock) -> None:
        self.uow, self.clock = uow, clock

    def __call__(self, token: str) -> Principal:
        if not is_well_formed_api_token(token):
            raise Unauthenticated(INVALID_API_TOKEN)
        now = self.clock.now()
        with self.uow(read_only=True) as uow:
            found = uow.api_tokens.get_with_user(api_token_digest(token))
        if found is None:
            raise Unauthenticated(INVALID_API_TOKEN)
        api_token, owner = found
        if not api_token.is_active(now) or owner.disabled:
            raise Unauthenticated(INVALID_API_TOKEN)
        if api_token.record_use(now):
            with self.uow() as uow:
                uow.api_tokens.record_use(api_token.id, now)
                uow.commit()
        return Principal.of_token(owner, api_token)

    verify = __call__


class VerifyBearerToken:
    """The in-process TokenVerifier: an API token or a session token, told apart by prefix."""

    def __init__(
        self, sessions: Callable[[str], Principal], api_tokens: AuthenticateApiToken
    ) -> None:
        self.sessions, self.api_tokens = sessions, api_tokens

    def verify(self, token: str) -> Principal:
        if is_api_token(token):
            return self.api_tokens(token)
        return self.sessions(token)

    __call__ = verify
