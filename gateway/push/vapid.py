"""VAPID key pairs for Web Push, in the formats browsers and pywebpush expect.

Public key: the 65-byte uncompressed P-256 point, URL-safe base64 without padding (what
`PushManager.subscribe({applicationServerKey})` takes). Private key: the 32-byte raw
scalar, same encoding (what `py_vapid.Vapid.from_string`, used by pywebpush, accepts).
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PRIVATE_KEY_BYTES = 32
_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def generate_keys() -> tuple[str, str]:
    """A fresh (public, private) VAPID key pair."""
    return encode_key_pair(ec.generate_private_key(ec.SECP256R1()))


def encode_key_pair(key: ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    """(public, private) in the Web Push encodings for `key`."""
    point = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    # Fixed width: a scalar with leading zero bytes must still be 32 bytes, or
    # py_vapid would take the shorter string for DER and fail to load it.
    scalar = key.private_numbers().private_value.to_bytes(PRIVATE_KEY_BYTES, "big")
    return b64url(point), b64url(scalar)


def public_key_for(private: str) -> str:
    """The public key matching a raw private key; ValueError when it is not one."""
    raw = b64url_decode(private)
    if len(raw) != PRIVATE_KEY_BYTES:
        raise ValueError(f"a VAPID private key is {PRIVATE_KEY_BYTES} bytes, got {len(raw)}")
    key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    return encode_key_pair(key)[0]


def check_key_pair(public: str, private: str) -> None:
    """ValueError unless `public` and `private` are one valid VAPID key pair."""
    if public_key_for(private) != public:
        raise ValueError("the VAPID public key does not match the private key")


def b64url(data: bytes) -> str:
    """URL-safe base64 without padding, as Web Push uses throughout."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of `b64url`, tolerant of padding; ValueError on anything else."""
    # The stdlib decoder silently skips foreign characters; a key must not be "fixed" so.
    if not _B64URL.fullmatch(text):
        raise ValueError("not URL-safe base64")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError(f"not URL-safe base64: {exc}") from exc
