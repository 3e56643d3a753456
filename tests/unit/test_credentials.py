"""Session tokens: a verified token is remembered, its expiry is not."""

from __future__ import annotations

import time

import jwt
import pytest

from domain.model import Actor, Role
from gateway.errors import ApiError
from gateway.services.credentials import decode_token, issue_token

SECRET = "unit-secret-" + "x" * 40


def test_a_remembered_token_still_expires() -> None:
    token = issue_token(SECRET, 7, "technician", 1)
    assert decode_token(SECRET, token) == Actor(7, Role.TECHNICIAN)
    assert decode_token(SECRET, token) == Actor(7, Role.TECHNICIAN)  # remembered
    time.sleep(1.1)
    with pytest.raises(ApiError) as refused:
        decode_token(SECRET, token)
    assert refused.value.status == 401


def test_a_token_is_remembered_for_its_own_secret_only() -> None:
    token = issue_token(SECRET, 8, "admin", 60)
    assert decode_token(SECRET, token).id == 8
    with pytest.raises(ApiError):
        decode_token("another-secret-" + "y" * 40, token)


def test_a_forged_token_is_refused_every_time() -> None:
    now = int(time.time())
    forged = jwt.encode({"sub": "1", "role": "admin", "iat": now, "exp": now + 60},
                        "not-the-secret-" + "z" * 40, algorithm="HS256")  # fmt: skip
    for _ in range(2):
        with pytest.raises(ApiError):
            decode_token(SECRET, forged)
