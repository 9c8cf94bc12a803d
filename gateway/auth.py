"""Bearer tokens: HS256 JWTs with `sub`, `role` and `exp`, issued and verified here.

`issue_token` backs the `momentum token` CLI command; `authenticate` is the
FastAPI dependency every `/v1` route uses (through the aliases in `deps.py`),
and `require_roles` narrows it to the roles a route allows. `require_secret`
is the one rule for the signing secret (set, at least 32 bytes, not a value
published here); the gateway will not start without it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "role", "exp")
# RFC 7518 section 3.2: an HS256 key is at least as long as the hash output.
MIN_SECRET_BYTES = 32
# Defaults this repository once shipped: anyone can sign tokens with them.
PUBLISHED_SECRETS = frozenset(
    {"momentum-local-development-secret", "momentum-local-development-secret-change-me"}
)
GENERATE_HINT = "e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))'"


class InsecureSecret(ValueError):
    """The JWT secret is missing or weak; the message says what to do."""


def require_secret(secret: SecretStr | str | None) -> str:
    """The HS256 signing secret, or `InsecureSecret` when it is missing, short or published."""
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if not value:
        raise InsecureSecret(
            "MOMENTUM_JWT_SECRET is not set: the gateway signs and checks tokens with it. "
            f"Set it to a random value of at least {MIN_SECRET_BYTES} bytes, {GENERATE_HINT}"
        )
    size = len(value.encode("utf-8"))
    if size < MIN_SECRET_BYTES:
        raise InsecureSecret(
            f"MOMENTUM_JWT_SECRET is {size} bytes long; HS256 needs at least "
            f"{MIN_SECRET_BYTES}. Set a random value, {GENERATE_HINT}"
        )
    if value in PUBLISHED_SECRETS:
        raise InsecureSecret(
            "MOMENTUM_JWT_SECRET is a default published in Momentum's repository; "
            f"set a random value, {GENERATE_HINT}"
        )
    return value


class Role(StrEnum):
    CUSTOMER = "customer"
    SELLER = "seller"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's subject and role."""

    sub: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class InvalidToken(ValueError):
    """The token cannot be trusted; the message says why (safe to show the caller)."""


def issue_token(sub: str, role: str, ttl_seconds: int, secret: str) -> str:
    """A signed token for `sub` with `role`, valid for `ttl_seconds` from now."""
    if not sub:
        raise ValueError("sub must not be empty")
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    now = int(time.time())
    claims = {"sub": sub, "role": Role(role).value, "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(token: str, secret: str) -> Principal:
    """The principal a token speaks for, or `InvalidToken`."""
    return _verify_claims(token, secret)[0]


def _verify_claims(token: str, secret: str) -> tuple[Principal, float]:
    """The principal a token speaks for and its expiry (epoch seconds), or `InvalidToken`."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": list(REQUIRED_CLAIMS)}
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("token expired") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidToken(f"token lacks the {exc.claim!r} claim") from exc
    except jwt.InvalidSignatureError as exc:
        raise InvalidToken("bad token signature") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("malformed token") from exc
    sub, role = claims["sub"], claims["role"]
    if not isinstance(sub, str) or not sub:
        raise InvalidToken("token subject must be a non-empty string")
    try:
        return Principal(sub=sub, role=Role(role)), float(claims["exp"])
    except ValueError as exc:
        raise InvalidToken(f"unknown role {role!r}") from exc


class VerifiedTokens:
    """Tokens whose signature and claims were checked, until they expire.

    A client sends the same token with every request, and checking an HS256
    signature and decoding the claims each time was a visible share of the
    gateway's time per request. A token is used from here only while `now < exp`
    (PyJWT's own rule, no leeway); an expired one is verified again, which says
    "token expired". Keyed by secret and token, so a different secret never sees
    another's entries. Only valid tokens are kept; bounded, emptied when full.
    """

    def __init__(self, max_tokens: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self.max_tokens = max_tokens
        self.clock = clock
        self.valid: dict[tuple[str, str], tuple[Principal, float]] = {}

    def verify(self, token: str, secret: str) -> Principal:
        """As `verify_token`, from memory while the token has not expired."""
        key = (secret, token)
        known = self.valid.get(key)
        if known is not None and self.clock() < known[1]:
            return known[0]
        principal, expires = _verify_claims(token, secret)
        if len(self.valid) >= self.max_tokens:
            self.valid.clear()
        self.valid[key] = (principal, expires)
        return principal


verified_tokens = VerifiedTokens()


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


# auto_error=False: a missing or non-Bearer header must be our 401 with
# WWW-Authenticate, whatever FastAPI's default of the day is.
bearer_scheme = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="HS256 JWT with claims `sub`, `role` (customer, seller or admin) and `exp`.",
)


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The caller's principal; 401 unless a valid Bearer token was sent."""
    return _principal(request, credentials)


def _principal(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None:
        raise unauthorized("missing bearer token")
    # The app keeps its Settings on app.state (see gateway.main.create_app), whose
    # lifespan refused to start without a good secret.
    secret = require_secret(request.app.state.settings.jwt_secret)
    try:
        return verified_tokens.verify(credentials.credentials, secret)
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from exc


def require_roles(
    *roles: Role,
) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[Principal]]:
    """A dependency that lets only `roles` through (403 for the others)."""
    allowed = frozenset(roles)

    # Takes the bearer credentials itself rather than depending on `authenticate`:
    # each dependency is a node FastAPI solves per request, and one less is a few
    # percent of a POST. The check is the same `_principal`.
    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> Principal:
        principal = _principal(request, credentials)
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"requires role: {names}")
        return principal

    return check
