"""Credentials: argon2 password hashes and HS256 session tokens (`exp` required; a
random `jti` makes every login's token its own, so that logging out revokes only it)."""

from __future__ import annotations

import functools
import hashlib
import time
import uuid
from datetime import UTC, datetime

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from domain.model import Actor, Role
from gateway.errors import ApiError

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verifying against this keeps an unknown email as slow as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def issue_token(secret: str, user_id: int, role: str, ttl_s: int) -> str:
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "role": role,
        "iat": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def decode_token(secret: str, token: str) -> Actor:
    actor, _ = decode_session(secret, token)
    return actor


def decode_session(secret: str, token: str) -> tuple[Actor, datetime]:
    """Who the token speaks for, and when it expires; 401 for anything not ours."""
    try:
        actor, expires = _verified(secret, token)
    except (jwt.InvalidTokenError, ValueError, TypeError, OverflowError) as exc:
        raise ApiError(401, "unauthorized", "The session is invalid or has expired.") from exc
    if expires.timestamp() <= int(time.time()):  # as PyJWT decides, with no leeway
        raise ApiError(401, "unauthorized", "The session is invalid or has expired.")
    return actor, expires


# A client sends the same token with every request: its signature, checked once, stays
# valid, and checking it again cost about a tenth of a small API call's CPU (134 µs here).
# Expiry is checked on every use, revocation by the role query; only tokens that verified
# are kept (a forged one never is).
VERIFIED_TOKENS_KEPT = 10_000


@functools.lru_cache(maxsize=VERIFIED_TOKENS_KEPT)
def _verified(secret: str, token: str) -> tuple[Actor, datetime]:
    claims = jwt.decode(
        token,
        secret,
        algorithms=["HS256"],
        options={"require": ["sub", "role", "iat", "exp"]},
    )
    actor = Actor(int(claims["sub"]), Role(claims["role"]))
    return actor, datetime.fromtimestamp(int(claims["exp"]), UTC)


def token_digest(token: str) -> bytes:
    """What names a token among the revoked ones (the token itself is never stored)."""
    return hashlib.sha256(token.encode()).digest()
