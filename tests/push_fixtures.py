"""Web Push test helpers: the `web-push-testing` emulator, a scriptable push service of our
own, test devices that can decrypt what they receive, and fresh users.

Importable from any test module; the pytest fixtures live in tests/integration/conftest.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import http_ece
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.push.guard import Resolve
from gateway.push.vapid import b64url, generate_keys

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tests" / "tools"
EMULATOR_SERVER = TOOLS / "node_modules" / "web-push-testing" / "src" / "bin" / "server.js"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_port() -> int:
    """A free port below the ephemeral range, so no outgoing connection takes it between
    now and the moment a server listens on it."""
    low = 32768
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    for port in random.sample(range(max(1024, low - 12000), low), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()


# The session's emulator port is chosen at import, so the session settings can admit it.
EMULATOR_PORT = server_port()
_VAPID_PUBLIC, _VAPID_PRIVATE = generate_keys()


def push_test_settings() -> dict[str, Any]:
    """Settings fields for the test session: VAPID keys, the emulator admitted, a quick digest."""
    return {
        "vapid_public_key": _VAPID_PUBLIC,
        "vapid_private_key": _VAPID_PRIVATE,
        "push_endpoint_allow": (f"http://localhost:{EMULATOR_PORT}",),
        "push_digest_interval_s": 1,
    }


class PushEmulator:
    """`web-push-testing` on its own port: a push service that decrypts what it receives.

    Its CLI (`web-push-testing --port N start`) detaches the server and keeps its pid in a
    node-persist file of the working directory; starting the same server script directly
    keeps it a child this fixture can stop for sure."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def start(self) -> None:
        if not EMULATOR_SERVER.exists():
            subprocess.run(["bash", str(TOOLS / "install.sh")], check=True)
        self.proc = subprocess.Popen(
            ["node", str(EMULATOR_SERVER), str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=TOOLS,
        )  # fmt: skip
        # It says so once it listens; an exit first means the port was taken, or worse.
        assert self.proc.stdout is not None
        first_line = self.proc.stdout.readline().decode(errors="replace")
        if "running on port" not in first_line:
            self.proc.wait(10)
            rest = self.proc.stdout.read().decode(errors="replace")
            raise RuntimeError(f"web-push-testing did not start on {self.port}: {first_line}{rest}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    async def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{self.url}{path}", json=body or {}) as response:
                text = await response.text()
                if response.status >= 300:
                    raise RuntimeError(f"emulator {path}: {response.status} {text}")
                return json.loads(text) if text.startswith("{") else None

    async def subscribe(self, application_server_key: str) -> dict[str, Any]:
        """A new browser subscription: {endpoint, keys: {p256dh, auth}, clientHash}."""
        reply = await self._post("/subscribe", {"applicationServerKey": application_server_key,
                                                "userVisibleOnly": "true"})  # fmt: skip
        return dict(reply["data"])

    async def messages(self, client_hash: str) -> list[dict[str, Any]]:
        """The decrypted payloads this subscription received, oldest first."""
        reply = await self._post("/get-notifications", {"clientHash": client_hash})
        return [json.loads(text) for text in reply["data"]["messages"]]

    async def expire(self, client_hash: str) -> None:
        """From now on the emulator answers 410 Gone for this subscription."""
        await self._post(f"/expire-subscription/{client_hash}")


@dataclass
class Device:
    """A browser's push keys, able to decrypt what a push service hands it."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def keys(self) -> dict[str, str]:
        point = self.key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return {"p256dh": b64url(point), "auth": b64url(self.auth)}

    def decrypt(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(
            body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
        )
        return dict(json.loads(plain))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    payload: dict[str, Any] | None
    at: float


Script = Callable[["Received"], tuple[int, dict[str, str]]]


class FakePushService:
    """A push service of our own on 127.0.0.1: it decrypts and records each push and answers
    what `script` says (default 201), after `delay_s` — to play a slow or failing service."""

    def __init__(self, device: Device | None = None, script: Script | None = None,
                 delay_s: float = 0.0) -> None:  # fmt: skip
        self.device = device or Device()
        self.script: Script = script or (lambda _: (201, {}))
        self.delay_s = delay_s
        self.received: list[Received] = []
        self.in_flight = self.max_in_flight = 0
        self.hold_until: int | None = None  # hold pushes until this many are in flight (1 s)
        self._crowd = asyncio.Event()
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))  # held from now on: no other process can take it
        self.port = int(self._socket.getsockname()[1])
        self._runner: web.AppRunner | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def endpoint(self, name: str | None = None) -> str:
        return f"{self.origin}/push/{name or uuid.uuid4().hex}"

    async def subscribe(self, pool: asyncpg.Pool, user_id: int) -> None:
        """Give `user_id` one device on this service, and broadcasts pushed to it."""
        await pool.execute("INSERT INTO notification_preferences (user_id, types)"
                           " VALUES ($1, $2)", user_id, {"broadcast": {"push": True}})  # fmt: skip
        keys = self.device.keys
        await pool.execute("INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth)"
                           " VALUES ($1, $2, $3, $4)", user_id, self.endpoint(), keys["p256dh"],
                           keys["auth"])  # fmt: skip

    async def start(self) -> FakePushService:
        app = web.Application()
        app.router.add_post("/push/{name}", self._push)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._socket.close()

    async def _push(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            payload: dict[str, Any] | None = self.device.decrypt(body)
        except Exception:  # a push for another device's keys: recorded, not readable
            payload = None
        received = Received(request.path, dict(request.headers), payload, time.monotonic())
        self.received.append(received)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.hold_until is not None:
                if self.in_flight >= self.hold_until:
                    self._crowd.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._crowd.wait(), 1)
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        status, headers = self.script(received)
        return web.Response(status=status, headers=headers)

    def notification_ids(self) -> list[int]:
        return [r.payload["data"]["notification_id"] for r in self.received if r.payload]


class TopicPushService(FakePushService):
    """A push service holding what it accepted for a device that is offline, as RFC 8030
    (section 5.4) has it: a message whose `Topic` matches one still waiting replaces it.
    `come_online()` hands the device what waits, oldest first."""

    def __init__(self, device: Device | None = None) -> None:
        super().__init__(device)
        self.waiting: list[Received] = []

    async def _push(self, request: web.Request) -> web.Response:
        response = await super()._push(request)
        if 200 <= response.status < 300:
            accepted = self.received[-1]
            topic = accepted.headers.get("Topic")
            if topic:
                self.waiting = [w for w in self.waiting if w.headers.get("Topic") != topic]
            self.waiting.append(accepted)
        return response

    def come_online(self) -> list[dict[str, Any]]:
        delivered, self.waiting = self.waiting, []
        return [message.payload for message in delivered if message.payload]


def fixed_dns(entries: dict[str, list[str]]) -> Resolve:
    """A DNS of fixed answers (the dict may change): what a name resolves to at a moment."""

    async def resolve(host: str, port: int) -> list[tuple[int, str]]:
        if host not in entries:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip) for ip in entries[host]]

    return resolve


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
