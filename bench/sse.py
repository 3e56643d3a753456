"""SSE gateway benchmark: idle connections held, memory per connection, connects/s, and
notification latency from API call to frame received, on one gateway process.

    .venv/bin/python bench/sse.py [--connections 2000] [--rate 50] [--seconds 10]

Starts a throwaway database, one `floorbell worker` and one `floorbell serve` as
subprocesses; this process is the client (asyncio + aiohttp).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp

from gateway.migrate import migrate
from gateway.provision import drop_database, ensure_database, provision

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-" + "x" * 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def open_one(session: aiohttp.ClientSession, url: str, token: str) -> aiohttp.ClientResponse:
    response = await session.get(url, headers={"Authorization": f"Bearer {token}"},
                                 timeout=aiohttp.ClientTimeout(total=None))  # fmt: skip
    if response.status != 200:
        raise RuntimeError(f"stream refused: {response.status} {await response.text()}")
    while True:
        line = await response.content.readline()
        if not line:
            raise RuntimeError("stream closed before `connected`")
        if line.startswith(b"event: connected"):
            return response


async def login(session: aiohttp.ClientSession, base: str, name: str) -> str:
    async with session.post(base + "/api/auth/login",
                            json={"email": f"{name}@example.com", "password": "floorbell"}) as r:  # fmt: skip
        body = await r.json()
    if "token" not in body:
        raise RuntimeError(f"login failed: {body}")
    return str(body["token"])


async def measure(base: str, pid: int, connections: int, rate: int, seconds: int) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        # The actor is never told of their own broadcast: tech1 listens, the admin sends.
        token, admin = await login(session, base, "tech1"), await login(session, base, "admin")
        rss_before = rss_kib(pid)
        gate = asyncio.Semaphore(200)

        async def guarded() -> aiohttp.ClientResponse:
            async with gate:
                return await open_one(session, base + "/api/sse/stream", token)

        start = time.perf_counter()
        streams = await asyncio.gather(*(guarded() for _ in range(connections)))
        connect_s = time.perf_counter() - start
        await asyncio.sleep(2)
        rss_after = rss_kib(pid)
        print(f"connections held: {len(streams)}")
        print(f"connects/s: {connections / connect_s:,.0f}")
        print(f"gateway RSS: {rss_before / 1024:.0f} MiB -> {rss_after / 1024:.0f} MiB,"
              f" {(rss_after - rss_before) / connections:.1f} KiB per connection")  # fmt: skip
        await latency(session, base, admin, streams[:20], rate, seconds)
        for stream in streams:
            stream.close()


async def latency(session: aiohttp.ClientSession, base: str, token: str,
                  sampled: list[aiohttp.ClientResponse], rate: int, seconds: int) -> None:  # fmt: skip
    sent: dict[str, float] = {}
    samples: list[float] = []

    async def listen(stream: aiohttp.ClientResponse) -> None:
        while True:
            line = await stream.content.readline()
            if line.startswith(b"data:") and b'"type":"broadcast"' in line:
                marker = line.split(b'"title":"', 1)[1].split(b'"', 1)[0].decode()
                if marker in sent:
                    samples.append((time.perf_counter() - sent[marker]) * 1000)

    listeners = [asyncio.create_task(listen(s)) for s in sampled]
    headers = {"Authorization": f"Bearer {token}"}
    for n in range(rate * seconds):  # open loop: a steady rate, whatever the answers
        marker = f"b{n}"
        sent[marker] = time.perf_counter()
        asyncio.create_task(_post(session, base + "/api/sse/broadcast", headers,
                                  {"title": marker, "body": "bench", "to": "all"}))  # fmt: skip
        await asyncio.sleep(1 / rate)
    await asyncio.sleep(3)
    for task in listeners:
        task.cancel()
    expected = len(sent) * len(sampled)
    print(f"notifications sent: {len(sent)} at {rate}/s, frames sampled: {len(samples)}/{expected}")
    if samples:
        print(f"API call -> frame latency: p50 {percentile(samples, 0.5):.1f} ms,"
              f" p99 {percentile(samples, 0.99):.1f} ms")  # fmt: skip


async def _post(session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: dict[str, object]) -> None:
    async with session.post(url, json=body, headers=headers) as response:
        await response.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=50, help="notifications per second")
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    with provision(ROOT / ".data") as env:
        url = env["DATABASE_URL"].rsplit("/", 1)[0] + f"/floorbell_bench_{uuid.uuid4().hex[:6]}"
        ensure_database(url)
        migrate(url)
        port = free_port()
        child_env = {**env, "DATABASE_URL": url, "JWT_SECRET": SECRET, "PATH": str(ROOT / ".venv/bin"),
                     "REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:6]}:", "LOGIN_ATTEMPTS_PER_MINUTE": "1000"}  # fmt: skip
        subprocess.run([sys.executable, "-m", "gateway", "seed"], env=child_env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        procs = [subprocess.Popen([sys.executable, "-m", "gateway", *cmd], env=child_env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL)
                 for cmd in (["worker"], ["serve", "--port", str(port)])]  # fmt: skip
        try:
            time.sleep(3)
            asyncio.run(measure(f"http://127.0.0.1:{port}", procs[1].pid, args.connections,
                                args.rate, args.seconds))  # fmt: skip
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(15)
            drop_database(url)


if __name__ == "__main__":
    main()
