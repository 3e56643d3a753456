"""Where pushes may go: public https hosts only (also after DNS), the allow-list aside;
and subscription keys that can actually encrypt."""

from __future__ import annotations

import os
import socket

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.push.guard import EndpointGuard, EndpointRefused, GuardedResolver
from gateway.push.subscriptions import InvalidKeys, check_keys
from gateway.push.vapid import b64url
from tests.push_fixtures import fixed_dns


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://fcm.googleapis.com/fcm/send/abc",  # not https
        "ftp://fcm.googleapis.com/abc",
        "https:///no-host",
        "https://user:secret@fcm.googleapis.com/abc",
        "https://127.0.0.1/push",
        "https://10.1.2.3/push",
        "https://172.16.0.9/push",
        "https://192.168.1.20/push",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata
        "https://100.100.100.200/push",  # shared address space (another cloud's metadata)
        "https://0.0.0.0/push",
        "https://224.0.0.1/push",
        "https://[::1]/push",
        "https://[fe80::1]/push",
        "https://[fd00:ec2::254]/push",
        "https://[::ffff:127.0.0.1]/push",  # IPv4-mapped loopback
        "https://[64:ff9b::a00:1]/push",  # NAT64 of 10.0.0.1
        "https://[2002:a00:1::]/push",  # 6to4 of 10.0.0.1
        # Every other spelling of an address that is not globally routable:
        "https://[64:ff9b:1::a00:1]/push",  # local-use NAT64
        "https://[64:ff9b:1::808:808]/push",  # ... whatever IPv4 it carries
        "https://[::7f00:1]/push",  # IPv4-compatible loopback
        "https://[::127.0.0.1]/push",
        "https://[::808:808]/push",  # IPv4-compatible: deprecated, routed nowhere
        "https://[::ffff:0:7f00:1]/push",  # IPv4-translated loopback
        "https://[::ffff:0:808:808]/push",
        "https://[0:0:0:0:0:ffff:7f00:1]/push",  # IPv4-mapped, written out
        "https://[::ffff:a00:1]/push",
        "https://[fec0::1]/push",  # site-local
        "https://[2001:db8::1]/push",  # documentation
        "https://[3fff::1]/push",
        "https://[2001::1]/push",  # Teredo
        "https://[2001:2::1]/push",  # benchmarking
        "https://[100::1]/push",  # discard
        "https://[5f00::1]/push",  # outside global unicast
        "https://[::]/push",
        "https://[ff02::1]/push",
        "https://192.0.0.8/push",  # IETF protocol assignments
        "https://192.0.0.170/push",
        "https://192.0.2.1/push",  # documentation
        "https://198.18.0.1/push",  # benchmarking
        "https://240.0.0.1/push",  # reserved
        "https://255.255.255.255/push",
        "https://127.1/push",  # IPv4 in the spellings resolvers accept
        "https://2130706433/push",
        "https://0x7f.0.0.1/push",
        "https://0177.0.0.1/push",
        "https://push.example.0x7f/push",
        "https://localhost/push",
        "https://intranet/push",
        "https://push..example.com/x",
        "https://fcm.googleapis.com:99999/abc",
        "http://localhost:8091/notify/abc",  # the allow-listed emulator is on 8090
        "https://localhost:8090/notify/abc",  # ... and speaks http
    ],
)
def test_endpoints_into_our_network_are_refused(endpoint: str) -> None:
    guard = EndpointGuard.from_origins(["http://localhost:8090"])
    with pytest.raises(EndpointRefused):
        guard.check_url(endpoint)


def test_public_endpoints_and_the_allow_list_pass() -> None:
    guard = EndpointGuard.from_origins(["http://localhost:8090"])
    assert guard.check_url("https://fcm.googleapis.com/fcm/send/abc") == (
        "fcm.googleapis.com",
        443,
        False,
    )
    assert guard.check_url("https://8.8.8.8:8443/x") == ("8.8.8.8", 8443, False)
    assert guard.check_url("https://[2606:4700::1111]/x")[2] is False
    assert guard.check_url("https://[::ffff:8.8.8.8]/x")[0] == "::ffff:8.8.8.8"  # mapped
    assert guard.check_url("https://[64:ff9b::808:808]/x")[0] == "64:ff9b::808:808"  # NAT64
    assert guard.check_url("https://[2002:808:808::1]/x")[0] == "2002:808:808::1"  # 6to4
    assert guard.check_url("https://push.example2.com/x")[0] == "push.example2.com"
    assert guard.check_url("http://LOCALHOST:8090/notify/abc") == ("localhost", 8090, True)


async def test_names_are_judged_by_every_address_they_resolve_to() -> None:
    guard = EndpointGuard.from_origins([], resolve=fixed_dns({
        "push.example.com": ["93.184.216.34", "2606:2800:220:1::1"],
        "rebound.example.com": ["93.184.216.34", "10.0.0.7"],
        "inside.example.com": ["169.254.169.254"],
        "compat.example.com": ["::7f00:1"],
        "translated.example.com": ["::ffff:0:7f00:1"],
        "nat64.example.com": ["64:ff9b:1::7f00:1"],
        "site.example.com": ["fec0::1"],
        "ietf.example.com": ["192.0.0.8"],
    }))  # fmt: skip
    await guard.check("https://push.example.com/abc")
    for endpoint in ("https://rebound.example.com/abc", "https://inside.example.com/abc",
                     "https://nowhere.example.com/abc", "https://compat.example.com/abc",
                     "https://translated.example.com/abc", "https://nat64.example.com/abc",
                     "https://site.example.com/abc", "https://ietf.example.com/abc"):  # fmt: skip
        with pytest.raises(EndpointRefused):
            await guard.check(endpoint)


async def test_the_senders_resolver_checks_at_connection_time() -> None:
    """The DNS answer may change after subscribing: the connection-time lookup decides."""
    answers = {"push.example.com": ["93.184.216.34"]}
    resolver = GuardedResolver(EndpointGuard.from_origins([], resolve=fixed_dns(answers)))
    resolved = await resolver.resolve("push.example.com", 443, socket.AF_UNSPEC)
    assert [r["host"] for r in resolved] == ["93.184.216.34"]
    answers["push.example.com"] = ["127.0.0.1"]
    with pytest.raises(EndpointRefused):
        await resolver.resolve("push.example.com", 443, socket.AF_UNSPEC)


async def test_the_real_resolver_refuses_loopback_names() -> None:
    resolver = GuardedResolver(EndpointGuard.from_origins([]))
    with pytest.raises(EndpointRefused):
        await resolver.resolve("localhost", 443, socket.AF_UNSPEC)
    allowed = GuardedResolver(EndpointGuard.from_origins(["http://localhost:8090"]))
    assert await allowed.resolve("localhost", 8090, socket.AF_UNSPEC)


def test_a_malformed_allow_list_is_refused() -> None:
    with pytest.raises(ValueError):
        EndpointGuard.from_origins(["localhost:8090"])


def point() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def test_valid_keys_pass() -> None:
    check_keys(b64url(point()), b64url(os.urandom(16)))
    check_keys(b64url(point()) + "=", b64url(os.urandom(16)) + "==")  # padding tolerated


@pytest.mark.parametrize(
    ("p256dh", "auth"),
    [
        (b64url(point()[:33]), b64url(os.urandom(16))),  # too short (a compressed point's size)
        (b64url(b"\x04" + b"\x01" * 64), b64url(os.urandom(16))),  # not on the curve
        (b64url(b"\x05" + point()[1:]), b64url(os.urandom(16))),  # not uncompressed
        (b64url(point()), b64url(os.urandom(15))),
        (b64url(point()), b64url(os.urandom(17))),
        ("not base64!", b64url(os.urandom(16))),
        (b64url(point()), "a+b/c"),  # standard base64, not URL-safe
    ],
)
def test_keys_that_cannot_encrypt_are_refused(p256dh: str, auth: str) -> None:
    with pytest.raises(InvalidKeys):
        check_keys(p256dh, auth)
