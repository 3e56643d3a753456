"""VAPID tokens are signed once per push-service origin and reused; responses are sorted
into sent, gone, retry and rejected."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.push.sender import (
    GONE,
    REJECTED,
    RETRY,
    SENT,
    TOKEN_LIFETIME_S,
    VapidTokens,
    classify,
    retry_after_s,
)
from gateway.push.vapid import b64url_decode, generate_keys


def claims_of(header: str, public: str) -> dict[str, object]:
    token = header.split("t=", 1)[1].split(",", 1)[0]
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(public))
    decoded: dict[str, object] = jwt.decode(
        token, key, algorithms=["ES256"], options={"verify_aud": False}
    )
    return decoded


def test_one_token_per_origin_with_its_own_audience() -> None:
    public, private = generate_keys()
    tokens = VapidTokens(private, "mailto:ops@example.com")
    first = tokens.authorization("https://fcm.googleapis.com/fcm/send/a")
    assert tokens.authorization("https://fcm.googleapis.com/fcm/send/b") == first
    other = tokens.authorization("https://updates.push.services.mozilla.com/wpush/v2/x")
    assert tokens.signed == 2
    assert claims_of(first, public)["aud"] == "https://fcm.googleapis.com"
    assert claims_of(other, public)["aud"] == "https://updates.push.services.mozilla.com"
    assert claims_of(other, public)["sub"] == "mailto:ops@example.com"
    assert first.startswith("vapid t=") and f"k={public}" in first


def test_a_token_lives_under_24_hours_and_is_renewed_before_it_expires() -> None:
    public, private = generate_keys()
    tokens = VapidTokens(private, "mailto:ops@example.com")
    now = time.time()
    header = tokens.authorization("https://push.example.com/a", now)
    expires = int(claims_of(header, public)["exp"])  # type: ignore[call-overload]
    assert now < expires <= now + 24 * 3600
    assert tokens.authorization("https://push.example.com/a", now + TOKEN_LIFETIME_S / 2) == header
    renewed = tokens.authorization("https://push.example.com/a", now + TOKEN_LIFETIME_S - 60)
    assert renewed != header and tokens.signed == 2


def test_responses_are_classified() -> None:
    assert classify(201, None, "").status == SENT
    assert classify(404, None, "").status == GONE
    assert classify(410, None, "gone").status == GONE
    assert classify(429, "7", "").status == RETRY and classify(429, "7", "").retry_after_s == 7
    assert classify(503, None, "").status == RETRY
    assert classify(400, None, "bad").status == REJECTED
    assert classify(413, None, "").status == REJECTED
    assert classify(307, None, "").error == "redirect refused"


def test_retry_after_takes_seconds_or_a_date() -> None:
    now = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert retry_after_s("120") == 120
    assert retry_after_s(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert retry_after_s("soon") is None and retry_after_s(None) is None
