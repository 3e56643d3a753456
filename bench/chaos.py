"""Crash benchmark: gateways and workers behind HAProxy, SIGKILLed and restarted one after
another while private messages flow; every message must reach its recipient once.

    .venv/bin/python bench/chaos.py [--gateways 3] [--workers 2] [--users 40] [--rate 40]
        [--seconds 30] [--kill-every 2.5] [--seed 1]

Starts PostgreSQL and Redis servers of its own (`bench/common.py`), `--gateways`
processes of `floorbell serve --workers 1` on ports of their own, `--workers` processes
of `floorbell worker`, and Debian's `haproxy` in front of the gateways (round robin,
health-checked every 200 ms, a request whose connection is refused tried on another).
One SSE client per user follows its stream through HAProxy and, when its connection
ends, reconnects with `Last-Event-ID`, as the PWA does. A writer posts `--rate` private
messages per second through HAProxy, each with an `Idempotency-Key`, and tries a
message again with the same key until it gets its 201 (a lost answer does not make a
second message). Every `--kill-every` seconds one process, gateways and workers in
turn in a shuffled order, is SIGKILLed and started again a second later. At the end it
waits for the stragglers and prints: messages committed, delivered once, missing,
delivered twice, the resets the clients got, the kills, the answers the writer saw and
the time from a message's 201 to its frame (p50, p99, max).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from common import (
    Gateway,
    free_port,
    gateway_command,
    percentile,
    prefix,
    seed_users,
    start,
    stop,
    throwaway_database,
    throwaway_services,
    wait_port,
)

from gateway.services.credentials import issue_token

SECRET = "chaos-bench-secret-0123456789abcdef0123456789"
MARK = re.compile(r"chaos-(\d+)-")
HAPROXY = """
global
    maxconn 4000
defaults
    mode http
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    retries 3
    option redispatch
    retry-on conn-failure empty-response
    # Without it HAProxy sends with MSG_MORE, and the kernel holds each small SSE frame
    # for 200 ms hoping for more.
    option http-no-delay
frontend gateways
    bind 127.0.0.1:{port}
    default_backend gateways
backend gateways
    balance roundrobin
    option httpchk GET /healthz
{servers}
"""


@dataclass
class Tally:
    committed: dict[int, float] = field(default_factory=dict)  # message -> when its 201 came
    recipient: dict[int, int] = field(default_factory=dict)
    seen: Counter[int] = field(default_factory=Counter)
    arrived: dict[int, float] = field(default_factory=dict)
    resets: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)
    kills: Counter[str] = field(default_factory=Counter)
    arrival: asyncio.Event = field(default_factory=asyncio.Event)  # set by each new marker

    async def stragglers(self, timeout_s: float) -> None:
        """Until every committed message arrived, or `timeout_s` passed."""
        deadline = time.monotonic() + timeout_s
        while any(self.seen[m] == 0 for m in self.committed):
            self.arrival.clear()
            try:
                await asyncio.wait_for(self.arrival.wait(), deadline - time.monotonic())
            except TimeoutError:
                return


class Fleet:
    """The gateways, the workers and HAProxy; any of the first two killed and restarted."""

    def __init__(self, env: dict[str, str], gateways: int, workers: int, home: Path) -> None:
        self.env, self.home = env, home
        self.ports = [free_port() for _ in range(gateways)]
        self.gateways = [self._gateway(n) for n in range(gateways)]
        self.workers = [self._worker(n) for n in range(workers)]
        self.port = free_port()
        servers = "\n".join(
            f"    server g{n} 127.0.0.1:{port} check inter 200 fall 1 rise 1"
            for n, port in enumerate(self.ports)
        )
        config = home / "haproxy.cfg"
        config.write_text(HAPROXY.format(port=self.port, servers=servers))
        binary = shutil.which("haproxy")
        if binary is None:
            raise SystemExit("haproxy is not installed: apt-get install -y haproxy")
        self.haproxy = start([binary, "-f", str(config)], env, stderr=subprocess.DEVNULL)
        for gateway in self.gateways:
            gateway.wait_ready()
        wait_port(self.port, self.haproxy)

    def _gateway(self, n: int) -> Gateway:
        return Gateway({**self.env, "INSTANCE_ID": f"chaos-g{n}"}, self.ports[n], 1)

    def _worker(self, n: int) -> subprocess.Popen[bytes]:
        env = {**self.env, "INSTANCE_ID": f"chaos-w{n}"}
        log = open(self.home / f"worker-{n}.log", "ab")  # the process writes it
        return start(gateway_command("worker"), env, stdout=log, stderr=log)

    async def kill_and_restart(self, target: str) -> None:
        kind, n = target[0], int(target[1:])
        proc = self.gateways[n].proc if kind == "g" else self.workers[n]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        await asyncio.sleep(1.0)
        if kind == "g":
            self.gateways[n] = self._gateway(n)
        else:
            self.workers[n] = self._worker(n)

    def stop(self) -> None:
        for gateway in self.gateways:
            gateway.stop()
        for worker in self.workers:
            stop(worker)
        stop(self.haproxy)


async def follow(session: aiohttp.ClientSession, url: str, token: str, tally: Tally) -> None:
    """One user's SSE client: every frame's marker counted; reconnects by its last id."""
    last_id: str | None = None
    while True:
        headers = {"Authorization": f"Bearer {token}"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        try:
            async with session.get(url, headers=headers) as response:
                event, data = "", ""
                async for raw in response.content:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("id:"):
                        last_id = line[3:].strip()
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data = line[5:].strip()
                    elif not line and event:
                        _count(event, data, tally)
                        event, data = "", ""
        except (aiohttp.ClientError, TimeoutError, ValueError):
            pass
        await asyncio.sleep(0.2)


def _count(event: str, data: str, tally: Tally) -> None:
    if event == "reset":
        tally.resets[json.loads(data)["data"].get("reason", "?")] += 1
    elif event == "new_message" and (found := MARK.search(data)):
        message = int(found.group(1))
        tally.seen[message] += 1
        tally.arrived.setdefault(message, time.monotonic())
        tally.arrival.set()


async def write(
    session: aiohttp.ClientSession, url: str, token: str, users: list[int], rate: float,
    seconds: float, tally: Tally,
) -> None:  # fmt: skip
    """`rate` messages a second, each tried with its key until it is committed."""
    sends = []
    started = time.monotonic()
    for n in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        sends.append(
            asyncio.create_task(_send(session, url, token, users[n % len(users)], n, tally))
        )
    await asyncio.gather(*sends)


async def _send(
    session: aiohttp.ClientSession, url: str, token: str, user: int, n: int, tally: Tally
) -> None:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
    body = {"message_type": "private", "recipient_id": user, "content": f"chaos-{n}- hello"}
    for _ in range(60):
        try:
            async with session.post(url, json=body, headers=headers) as response:
                tally.answers[str(response.status)] += 1
                if response.status == 201:
                    tally.committed[n], tally.recipient[n] = time.monotonic(), user
                    return
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.answers[type(exc).__name__] += 1
        await asyncio.sleep(0.5)
    tally.answers["given up"] += 1


async def chaos(fleet: Fleet, every_s: float, until: asyncio.Event, tally: Tally,
                seed: int) -> None:  # fmt: skip
    targets = [f"g{n}" for n in range(len(fleet.gateways))]
    targets += [f"w{n}" for n in range(len(fleet.workers))]
    order = random.Random(seed)
    while True:
        order.shuffle(targets)
        for target in targets:
            if await _ended(until, every_s):
                return
            await fleet.kill_and_restart(target)
            tally.kills[target[0]] += 1


async def _ended(until: asyncio.Event, within_s: float) -> bool:
    """Whether `until` is set within `within_s`."""
    try:
        await asyncio.wait_for(until.wait(), within_s)
    except TimeoutError:
        return False
    return True


async def run(args: argparse.Namespace, redis_url: str, database: str, home: Path) -> None:
    sender, users = await seed_users(database, args.users)
    env = {**os.environ, "DATABASE_URL": database, "REDIS_URL": redis_url,
           "JWT_SECRET": SECRET, "REDIS_PREFIX": prefix("chaos"), "WORKER_HEALTH_PORT": "0",
           "CLAIM_IDLE_MS": "2000", "SSE_HEARTBEAT_SECONDS": "2"}  # fmt: skip
    fleet = Fleet(env, args.gateways, args.workers, home)
    tally = Tally()
    base = f"http://127.0.0.1:{fleet.port}"
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=10)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            clients = [asyncio.create_task(follow(session, f"{base}/api/sse/stream",
                                                  issue_token(SECRET, user, "technician", 3600),
                                                  tally)) for user in users]  # fmt: skip
            await asyncio.sleep(2)
            done = asyncio.Event()
            killer = asyncio.create_task(chaos(fleet, args.kill_every, done, tally, args.seed))
            token = issue_token(SECRET, sender, "supervisor", 3600)
            await write(session, f"{base}/api/messages", token, users, args.rate, args.seconds,
                        tally)  # fmt: skip
            done.set()
            await killer
            await tally.stragglers(30)
            for client in clients:
                client.cancel()
    finally:
        fleet.stop()
    report(tally)


def report(tally: Tally) -> None:
    committed = set(tally.committed)
    once = sum(1 for m in committed if tally.seen[m] == 1)
    missing = sorted(m for m in committed if tally.seen[m] == 0)
    twice = sum(1 for m in committed if tally.seen[m] > 1)
    delays = [
        1000 * (tally.arrived[m] - tally.committed[m]) for m in committed if m in tally.arrived
    ]
    print(f"kills: {dict(tally.kills)} (g: gateway, w: worker)")
    print(f"writer's answers: {dict(tally.answers)}")
    print(f"resets: {dict(tally.resets) or 'none'}")
    print(f"messages committed {len(committed)}, delivered once {once}, missing {len(missing)},"
          f" delivered more than once {twice}")  # fmt: skip
    if missing:
        print(f"missing: {missing[:20]}{' ...' if len(missing) > 20 else ''}")
    if delays:
        delays.sort()
        print(f"201 -> frame: p50 {percentile(delays, 0.5):.0f} ms, p99"
              f" {percentile(delays, 0.99):.0f} ms, max {delays[-1]:.0f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gateways", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--rate", type=float, default=40, help="messages per second")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--kill-every", type=float, default=2.5, help="seconds between kills")
    parser.add_argument("--seed", type=int, default=1, help="the order of the kills")
    parser.add_argument(
        "--shared-services", action="store_true", help="the servers provision finds, not our own"
    )
    args = parser.parse_args()
    with throwaway_services(args.shared_services) as services:
        with throwaway_database(services, "chaos") as database:
            with tempfile.TemporaryDirectory(prefix="floorbell-chaos-") as home:
                asyncio.run(run(args, services.redis_url, database, Path(home)))


if __name__ == "__main__":
    main()
