"""VAPID keys and the JWT secret: Web Push formats, py_vapid compatibility, storage."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from py_vapid import Vapid, Vapid02

from gateway.ops.key_files import load_or_create_jwt_secret, load_or_create_vapid_keys
from gateway.push.vapid import (
    b64url_decode,
    check_key_pair,
    encode_key_pair,
    generate_keys,
    public_key_for,
)

URLSAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_use_the_web_push_encodings() -> None:
    public, private = generate_keys()
    assert set(public) <= URLSAFE and set(private) <= URLSAFE  # no padding, URL-safe
    point, scalar = decode(public), decode(private)
    assert len(point) == 65 and point[0] == 0x04  # uncompressed P-256 point
    assert len(scalar) == 32
    assert generate_keys() != (public, private)


def test_py_vapid_loads_the_private_key_and_derives_our_public_key() -> None:
    public, private = generate_keys()
    for loaded in (Vapid02.from_raw(private.encode()), Vapid.from_string(private)):
        point = loaded.public_key.public_numbers()
        assert public_key_for(private) == public
        assert decode(public) == b"\x04" + point.x.to_bytes(32, "big") + point.y.to_bytes(32, "big")


def test_py_vapid_signature_verifies_with_the_public_key() -> None:
    public, private = generate_keys()
    claims = {"sub": "mailto:ops@example.com", "aud": "https://push.example.com"}
    header = Vapid.from_string(private).sign(claims)["Authorization"]
    assert f"k={public}" in header
    token = header.split("t=", 1)[1].split(",", 1)[0]
    signed, _, signature = token.rpartition(".")
    raw = decode(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), decode(public))
    key.verify(der, signed.encode(), ec.ECDSA(hashes.SHA256()))  # raises when invalid


def test_a_small_scalar_still_encodes_to_32_bytes() -> None:
    # One in 256 random keys has a leading zero byte; py_vapid needs all 32.
    public, private = encode_key_pair(ec.derive_private_key(7, ec.SECP256R1()))
    assert decode(private) == (7).to_bytes(32, "big")
    assert Vapid.from_string(private).private_key.private_numbers().private_value == 7
    check_key_pair(public, private)


def test_mismatched_or_malformed_keys_are_rejected() -> None:
    public, _ = generate_keys()
    _, other_private = generate_keys()
    with pytest.raises(ValueError, match="does not match"):
        check_key_pair(public, other_private)
    with pytest.raises(ValueError, match="32 bytes"):
        public_key_for(public)
    with pytest.raises(ValueError, match="base64"):
        b64url_decode("not$base64")


def test_load_or_create_stores_keys_privately_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    public, private = load_or_create_vapid_keys(data_dir)
    path = data_dir / "vapid.json"
    assert mode(path) == 0o600
    assert json.loads(path.read_text()) == {"public_key": public, "private_key": private}
    assert load_or_create_vapid_keys(data_dir) == (public, private)
    assert [p.name for p in data_dir.iterdir()] == ["vapid.json"]  # no temporary left


def test_load_or_create_refuses_a_damaged_file(tmp_path: Path) -> None:
    public, _ = generate_keys()
    _, private = generate_keys()
    (tmp_path / "vapid.json").write_text(json.dumps({"public_key": public, "private_key": private}))
    with pytest.raises(ValueError, match="no valid VAPID key pair"):
        load_or_create_vapid_keys(tmp_path)
    (tmp_path / "vapid.json").write_text("{")
    with pytest.raises(ValueError, match="no valid VAPID key pair"):
        load_or_create_vapid_keys(tmp_path)


def test_jwt_secret_is_random_private_and_stable(tmp_path: Path) -> None:
    secret = load_or_create_jwt_secret(tmp_path)
    assert len(decode(secret)) == 48 and set(secret) <= URLSAFE
    assert mode(tmp_path / "jwt_secret") == 0o600
    assert load_or_create_jwt_secret(tmp_path) == secret
    assert load_or_create_jwt_secret(tmp_path / "other") != secret


def test_jwt_secret_too_short_is_refused(tmp_path: Path) -> None:
    (tmp_path / "jwt_secret").write_text("short\n")
    with pytest.raises(ValueError, match="fewer than 32 bytes"):
        load_or_create_jwt_secret(tmp_path)
