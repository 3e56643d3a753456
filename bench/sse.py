"""SSE gateway benchmark: the gateway against the floor of a minimal SSE server, with the
same number of processes each.

    .venv/bin/python bench/sse.py [--connections 2000] [--rate 1000] [--seconds 5]
        [--scenario all|idle|latency|fanout|resume] [--target gateway|floor|both]
        [--workers N] [--client-procs 2] [--resume-clients N] [--profile DIR]

Starts PostgreSQL and Redis servers of its own (`bench/common.py`), creates a throwaway
database and key prefix, seeds one sender and `--users` technicians in one SQL batch, and
starts `python -m gateway worker` and `python -m gateway serve --workers N` (default: one
process per core) as subprocesses, plus, for the floor, N processes of
`bench/sse_floor.py` sharing one listening socket as the gateway's do. The floor's
latency run posts its messages through the same gateway API and worker as the
gateway's. The connections are held by `--client-procs`
processes of `bench/sse_client.py`; this process coordinates, posts the API calls and
appends board entries. Figures, for the gateway and for the floor (same client, same
Redis streams, same router), then the gateway's as a ratio of the floor's:

- idle: two waves, 500 connects in flight. First one connection per user (`--users`,
  default a quarter of `--connections`): new users, so every arrival is a `presence`
  event to every open connection (about U^2 / 2 frames, counted until they stop); then
  the other connections, as more devices of those users (no presence change): connects/s
  and server RSS growth per connection, the cost of a connection itself;
- latency: open loop at `--rate` private messages/s for `--seconds` (POST /api/messages
  from a sender to many recipients, each connected) until the `new_message` frame with
  that message's marker arrives at every connection of the recipient (p50/p99);
- fanout: board entries (XADD onto the board stream, as the router appends them) at
  rising rates; delivered frames/s and p99 delay per step, and the highest delivered
  rate whose p99 stays within 250 ms;
- resume: `--resume-clients` connections record their id, disconnect, fall 20 entries
  behind (10 on their user's stream, 10 on the board), then all reconnect at once with
  Last-Event-ID; time until every one has all 20, and how many were lost or repeated.

Every wait is bounded; `--max-seconds` stops the whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import (  # noqa: E402
    SECRET,
    Gateway,
    PidGroups,
    Profiler,
    Services,
    cpu_by_name,
    cpu_s,
    cpu_spent,
    free_port,
    gateway_command,
    percentile_hist,
    process_tree,
    rss_kib,
    seed_users,
    start,
    stop,
    throwaway_database,
    throwaway_services,
)
from redis.asyncio import Redis  # noqa: E402
from sse_client import Poster  # noqa: E402

from gateway.config import usable_cores  # noqa: E402
from gateway.keys import Keys  # noqa: E402
from gateway.processes.supervisor import bind  # noqa: E402
from gateway.services.credentials import issue_token  # noqa: E402

FANOUT_STEPS = (2_500, 5_000, 10_000, 20_000, 40_000, 80_000)  # delivered frames/s
FANOUT_P99_MS = 250.0
RESUME_BEHIND = 10  # entries per stream (the user's and the board): 20 in all
OPEN_CONCURRENCY = 500


def tree(roots: list[int]) -> list[int]:
    """Every process of a target: its root processes and their children."""
    return [pid for root in roots for pid in process_tree(root)]


def tree_rss_kib(roots: list[int]) -> int:
    return sum(rss_kib(pid) for pid in tree(roots))


def tree_cpu_s(roots: list[int]) -> float:
    return sum(cpu_s(pid) for pid in tree(roots))


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    hist: dict[float, int] = {}
    for report in reports:
        for key, count in report["hist"]:
            hist[key] = hist.get(key, 0) + count
    firsts = [r["first"] for r in reports if r["first"]]
    return {
        "hist": hist,
        "count": sum(r["count"] for r in reports),
        "stale": sum(r["stale"] for r in reports),
        "dupes": sum(r["dupes"] for r in reports),
        "resets": sum(r["resets"] for r in reports),
        "frames": sum(r["frames"] for r in reports),
        "alive": sum(r.get("alive", 0) for r in reports),
        "first": min(firsts) if firsts else 0.0,
        "last": max(r["last"] for r in reports),
    }


def bench_entry(phase: int, seq: int, sent: float) -> str:
    """A board or user-stream entry the clients recognise: its phase, sequence number and
    send time travel in the marker."""
    body = {
        "type": "bench",
        "ts": "",
        "actor_id": None,
        "data": {"m": f"BM{phase}-{seq}_{sent:.6f}_"},
    }
    return json.dumps(body)


def merge_counts(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for each in counts:
        for key, value in each.items():
            merged[key] = merged.get(key, 0) + value
    return merged


def rate(opened: dict[str, Any]) -> float:
    return float(opened["opened"] / opened["seconds"]) if opened["seconds"] else 0.0


def raise_nofile(needed: int) -> int:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:  # raising the hard limit needs privilege; otherwise settle for the hard limit
        ceiling = int(Path("/proc/sys/fs/nr_open").read_text())
        limit = max(hard, min(needed, ceiling))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    except (OSError, ValueError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Clients:
    """The client processes, one JSON command and one JSON answer at a time each."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self) -> None:
        for index in range(self.count):
            source = f"127.0.0.{11 + index}"  # own source address: ephemeral ports per process
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(ROOT / "bench/sse_client.py"),
                source,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                limit=256 * 1024 * 1024,
            )
            self.procs.append(proc)
        for proc in self.procs:
            await asyncio.wait_for(self._read(proc), 30)

    async def _read(self, proc: asyncio.subprocess.Process) -> dict[str, Any]:
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if not line:
            raise RuntimeError("a client process ended")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"client: {answer['error']}")
        return answer

    async def ask(
        self, commands: list[dict[str, Any]], limit_s: float = 300
    ) -> list[dict[str, Any]]:
        for proc, command in zip(self.procs, commands, strict=True):
            assert proc.stdin is not None
            proc.stdin.write((json.dumps(command) + "\n").encode())
            await proc.stdin.drain()
        return list(
            await asyncio.wait_for(
                asyncio.gather(*(self._read(proc) for proc in self.procs)), limit_s
            )
        )

    async def ask_all(self, command: dict[str, Any], limit_s: float = 300) -> list[dict[str, Any]]:
        return await self.ask([command] * self.count, limit_s)

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None and proc.stdin is not None:
                proc.stdin.write(b'{"cmd": "exit"}\n')
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()


class Bench:
    def __init__(
        self,
        args: argparse.Namespace,
        env: dict[str, str],
        users: list[int],
        sender: int,
        ports: dict[str, int],
        roots: dict[str, list[int]],
        services: Services,
    ) -> None:
        self.args, self.env, self.users, self.sender = args, env, users, sender
        self.ports, self.roots, self.services = ports, roots, services
        self.keys = Keys(env["REDIS_PREFIX"])
        self.clients = Clients(args.client_procs)
        self.profiler = Profiler(args.profile)
        self.phase = 0

    def process_groups(self, target: str) -> PidGroups:
        """The processes whose CPU the latency run reads, by name."""

        def groups() -> dict[str, list[int]]:
            found = {name: tree(self.roots[name]) for name in ("gateway", "worker")}
            found.update({"floor": tree(self.roots["floor"])} if target == "floor" else {})
            found["clients"] = [proc.pid for proc in self.clients.procs]
            return found | self.services.server_pids()

        return groups

    def wants(self, scenario: str) -> bool:
        return self.args.scenario in ("all", scenario)

    def next_phase(self) -> int:
        self.phase += 1
        return self.phase

    def share(self, count: int, first: int = 0) -> list[list[int]]:
        """Connections `first` to `count - 1`: connection j belongs to user j mod U and to
        client process j mod P."""
        procs = self.args.client_procs
        users = self.users
        return [
            [users[j % len(users)] for j in range(first + i, count, procs)] for i in range(procs)
        ]

    def conns_per_user(self, count: int) -> dict[int, int]:
        per: dict[int, int] = {}
        for j in range(count):
            user = self.users[j % len(self.users)]
            per[user] = per.get(user, 0) + 1
        return per

    async def open(self, target: str, count: int, first: int = 0) -> dict[str, Any]:
        path = "/api/sse/stream" if target == "gateway" else "/stream?user={user}"
        shares = self.share(count, first)
        per_proc = max(1, OPEN_CONCURRENCY // self.args.client_procs)
        answers = await self.clients.ask(
            [
                {
                    "cmd": "open",
                    "port": self.ports[target],
                    "path": path,
                    "users": share,
                    "secret": SECRET,
                    "concurrency": per_proc,
                }
                for share in shares
            ],
            limit_s=600,
        )
        opened = sum(a["ok"] for a in answers)
        seconds = max(a["end"] for a in answers) - min(a["start"] for a in answers)
        return {"opened": opened, "failed": sum(a["failed"] for a in answers), "seconds": seconds}

    async def wait_for_count(self, expected: int, deadline: float) -> dict[str, Any]:
        for _ in range(10_000):
            merged = merge(await self.clients.ask_all({"cmd": "report"}))
            if merged["count"] >= expected or time.time() >= deadline:
                return merged
            await asyncio.sleep(0.25)
        return merged

    # --- scenarios ------------------------------------------------------------------

    async def settle(self, limit_s: float = 300) -> dict[str, Any]:
        """Wait until no frame has arrived for a second: on the gateway, every arrival is
        a `presence` event to every open connection, so opening N users sends about
        N^2 / 2 frames after the connects themselves."""
        start = time.time()
        frames, quiet_since = -1, start
        while time.time() - start < limit_s:
            now_frames = merge(await self.clients.ask_all({"cmd": "report"}))["frames"]
            if now_frames != frames:
                frames, quiet_since = now_frames, time.time()
            elif time.time() - quiet_since >= 1.0:
                break
            await asyncio.sleep(0.2)
        return {"frames": frames, "seconds": quiet_since - start}

    async def idle(self, target: str, roots: list[int]) -> dict[str, Any]:
        """Two waves: one connection per user (new users: each arrival is a `presence`
        event to every open connection, about U^2 / 2 frames), then the remaining
        connections as more devices of those users, which changes no one's presence —
        the cost of a connection itself, in time and memory."""
        count, users = self.args.connections, min(self.args.connections, len(self.users))
        rss_start = tree_rss_kib(roots)
        await self.clients.ask_all({"cmd": "phase", "phase": self.next_phase()})
        arrivals = await self.open(target, users)
        storm = await self.settle()
        rss_arrived = tree_rss_kib(roots)
        devices = await self.open(target, count, first=users) if count > users else None
        await asyncio.sleep(2)
        alive = sum(a["alive"] for a in await self.clients.ask_all({"cmd": "report"}))
        rss_end = tree_rss_kib(roots)
        result = {
            "held": alive,
            "failed": arrivals["failed"] + (devices["failed"] if devices else 0),
            "arrivals": arrivals["opened"],
            "arrivals_s": rate(arrivals),
            "storm_frames": storm["frames"],
            "storm_s": storm["seconds"],
            "connects_s": rate(devices) if devices else None,
            "rss_start_mib": rss_start / 1024,
            "rss_end_mib": rss_end / 1024,
            "kib_per_conn_all": (rss_end - rss_start) / max(alive, 1),
            "kib_per_conn": (
                (rss_end - rss_arrived) / max(devices["opened"], 1) if devices else None
            ),
        }
        print(
            f"  [{target}] {arrivals['opened']:,} users arrive ({arrivals['failed']} failed) in "
            f"{arrivals['seconds']:.1f} s = {result['arrivals_s']:,.0f}/s, then "
            f"{storm['frames']:,} frames (presence) until quiet {storm['seconds']:.1f} s later",
            flush=True,
        )
        if devices:
            print(
                f"  [{target}] {devices['opened']:,} more devices of online users "
                f"({devices['failed']} failed) in {devices['seconds']:.1f} s = "
                f"{result['connects_s']:,.0f} connects/s; "
                f"RSS +{result['kib_per_conn']:.1f} KiB per device",
                flush=True,
            )
        print(
            f"  [{target}] {alive:,} held; RSS {result['rss_start_mib']:.0f} -> "
            f"{result['rss_end_mib']:.0f} MiB = {result['kib_per_conn_all']:.1f} KiB/conn "
            "all included",
            flush=True,
        )
        return result

    async def latency(self, target: str, roots: list[int], held: int) -> dict[str, Any]:
        rate, seconds = self.args.rate, self.args.seconds
        per_user = self.conns_per_user(held)
        recipients = [u for u in per_user if u != self.sender]
        phase = self.next_phase()
        await self.clients.ask_all({"cmd": "phase", "phase": phase})
        token = issue_token(SECRET, self.sender, "supervisor", 3600)
        poster = Poster(self.ports["gateway"], token, size=256)
        total, tasks, expected = rate * seconds, [], 0
        procs = self.process_groups(target)
        cpu_before = cpu_by_name(procs, own="coordinator")
        self.profiler.start(roots, f"{target}-latency")
        start = time.time() + 0.2
        sent = 0
        while sent < total:  # open loop: each call leaves at its time, answered or not
            now = time.time()
            while sent < total and start + sent / rate <= now:
                due = start + sent / rate
                user = recipients[sent % len(recipients)]
                expected += per_user[user]
                body = {
                    "message_type": "private",
                    "recipient_id": user,
                    "content": f"BM{phase}-{sent}_{due:.6f}_",
                }
                tasks.append(asyncio.ensure_future(poster.post("/api/messages", body)))
                sent += 1
            await asyncio.sleep(0.001)
        send_end = time.time()
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), 60)
        except TimeoutError:
            pass
        merged = await self.wait_for_count(expected, time.time() + 15)
        self.profiler.stop()
        poster.close()
        hist = merged["hist"]
        api = sorted(poster.durations)
        result = {
            "rate": rate,
            "sent": total,
            "expected": expected,
            "received": merged["count"],
            "p50": percentile_hist(hist, 0.5),
            "p99": percentile_hist(hist, 0.99),
            "max": max(hist) if hist else float("nan"),
            "api_p50": api[len(api) // 2] if api else float("nan"),
            "api_p99": api[min(len(api) - 1, int(0.99 * len(api)))] if api else float("nan"),
            "statuses": poster.statuses,
            "send_s": send_end - start,
        }
        cpu_after = cpu_by_name(procs, own="coordinator")
        cpu = cpu_spent(cpu_before, cpu_after, time.time() - start)
        print(
            f"  [{target}] latency at {rate}/s x {seconds} s: {merged['count']:,}/{expected:,} "
            f"frames, p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, max "
            f"{result['max']:.0f} ms; API p50 {result['api_p50']:.1f} ms p99 "
            f"{result['api_p99']:.1f} ms, statuses {poster.statuses}; CPU "
            + ", ".join(f"{name} {share:.0%}" for name, share in cpu.items()),
            flush=True,
        )
        return result

    async def fanout(self, target: str, roots: list[int], redis: Redis) -> dict[str, Any]:
        steps, best = [], 0.0
        self.profiler.start(roots, f"{target}-fanout")
        for goal in FANOUT_STEPS:
            alive = sum(a["alive"] for a in await self.clients.ask_all({"cmd": "report"}))
            if not alive:
                break
            rate = goal / alive
            count = max(1, round(rate * self.args.step_seconds))
            phase = self.next_phase()
            await self.clients.ask_all({"cmd": "phase", "phase": phase})
            cpu_before = tree_cpu_s(roots)
            start = time.time() + 0.1
            sent = 0
            while sent < count:
                now = time.time()
                due_now = []
                while sent < count and start + sent / rate <= now:
                    due_now.append((sent, start + sent / rate))
                    sent += 1
                if due_now:
                    async with redis.pipeline(transaction=False) as pipe:
                        for seq, due in due_now:
                            body = bench_entry(phase, seq, due)
                            pipe.xadd(self.keys.board_stream, {"t": "bench", "e": body})
                        await pipe.execute()
                await asyncio.sleep(0.002)
            expected = count * alive
            merged = await self.wait_for_count(expected, time.time() + 10)
            elapsed = max(merged["last"], start + count / rate) - start
            step = {
                "goal": goal,
                "events_s": rate,
                "events": count,
                "conns": alive,
                "expected": expected,
                "received": merged["count"],
                "delivered_s": merged["count"] / elapsed if elapsed > 0 else 0.0,
                "p50": percentile_hist(merged["hist"], 0.5),
                "p99": percentile_hist(merged["hist"], 0.99),
                "server_cpu": (tree_cpu_s(roots) - cpu_before) / max(time.time() - start, 1e-9),
                "alive_after": merged["alive"],
            }
            steps.append(step)
            ok = step["p99"] <= FANOUT_P99_MS and merged["count"] >= expected
            print(
                f"  [{target}] fanout {rate:.2f} board events/s x {alive:,} conns: "
                f"{merged['count']:,}/{expected:,} frames, {step['delivered_s']:,.0f}/s, "
                f"p50 {step['p50']:.1f} ms, p99 {step['p99']:.1f} ms, server CPU "
                f"{step['server_cpu']:.0%}, {merged['alive']:,} still connected"
                f"{'' if ok else '  <- over budget'}",
                flush=True,
            )
            if not ok:
                break
            best = max(best, step["delivered_s"])
        self.profiler.stop()
        return {"best": best, "steps": steps}

    async def resume(self, target: str, roots: list[int], redis: Redis) -> dict[str, Any]:
        count = self.args.resume_clients or self.args.connections
        await self.clients.ask_all({"cmd": "phase", "phase": self.next_phase()})
        opened = await self.open(target, count)
        storm = await self.settle()  # the arrivals' presence events are not part of it
        print(
            f"  [{target}] resume: {opened['opened']:,} connected in {opened['seconds']:.1f} s, "
            f"then {storm['frames']:,} presence frames until quiet {storm['seconds']:.1f} s later",
            flush=True,
        )
        phase = self.next_phase()
        await self.clients.ask_all({"cmd": "phase", "phase": phase, "track": True})
        gone = await self.clients.ask_all({"cmd": "disconnect"})
        users = sorted(self.conns_per_user(count))
        async with redis.pipeline(transaction=False) as pipe:
            for index, user in enumerate(users):
                for seq in range(RESUME_BEHIND):
                    body = bench_entry(phase, seq, time.time())
                    pipe.xadd(self.keys.user_stream(user), {"t": "bench", "e": body})
                if index % 500 == 499:
                    await pipe.execute()
            for seq in range(RESUME_BEHIND, 2 * RESUME_BEHIND):
                body = bench_entry(phase, seq, time.time())
                pipe.xadd(self.keys.board_stream, {"t": "bench", "e": body})
            await pipe.execute()
        await asyncio.sleep(1)
        cpu_before = tree_cpu_s(roots)
        self.profiler.start(roots, f"{target}-resume")
        answers = await self.clients.ask_all(
            {"cmd": "resume", "expect": 2 * RESUME_BEHIND, "timeout": self.args.resume_timeout},
            limit_s=self.args.resume_timeout + 120,
        )
        self.profiler.stop()
        start = min(a["start"] for a in answers)
        done = sorted(t for a in answers for t in a["done_at"])
        complete = sum(a["complete"] for a in answers)
        result = {
            "clients": opened["opened"],
            "with_id": sum(g["with_id"] for g in gone),
            "alive_before": sum(g["alive"] for g in gone),
            "complete": complete,
            "seconds": (done[-1] - start) if done else float("nan"),
            "p50_s": (done[len(done) // 2] - start) if done else float("nan"),
            "missing": sum(a["missing"] for a in answers),
            "repeated": sum(a["dupes"] for a in answers),
            "stale": sum(a["stale"] for a in answers),
            "resets": sum(a["resets"] for a in answers),
            "reset_reasons": merge_counts(a["reset_reasons"] for a in answers),
            "failed": sum(a["failed"] for a in answers),
            "server_cpu_s": tree_cpu_s(roots) - cpu_before,
        }
        print(
            f"  [{target}] resume: {result['alive_before']:,} connected before the drop; "
            f"{complete:,}/{result['clients']:,} clients got all "
            f"{2 * RESUME_BEHIND} in {result['seconds']:.2f} s (median {result['p50_s']:.2f} s); "
            f"missing {result['missing']}, repeated {result['repeated']}, replayed from before "
            f"{result['stale']}, resets {result['resets']} {result['reset_reasons'] or ''}, "
            f"reconnects failed {result['failed']}",
            flush=True,
        )
        await self.clients.ask_all({"cmd": "close"})
        return result

    async def target(self, target: str, redis: Redis) -> dict[str, Any]:
        roots = self.roots[target]
        results: dict[str, Any] = {}
        needs_conns = any(self.wants(s) for s in ("idle", "latency", "fanout"))
        if needs_conns:
            results["idle"] = await self.idle(target, roots)
            held = results["idle"]["held"]
            if self.wants("latency"):
                results["latency"] = await self.latency(target, roots, held)
            if self.wants("fanout"):
                results["fanout"] = await self.fanout(target, roots, redis)
            await self.clients.ask_all({"cmd": "close"})
            await asyncio.sleep(2)
        if self.wants("resume"):
            results["resume"] = await self.resume(target, roots, redis)
        return results


def fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return format(value, spec)


def table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    def get(target: str, *path: str) -> Any:
        node: Any = results.get(target, {})
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    resume_n = args.resume_clients or args.connections
    rows = [
        ("idle connections held", ("idle", "held"), ",.0f", "20,000"),
        ("server RSS per device connection (KiB)", ("idle", "kib_per_conn"), ".1f", "<= 40"),
        ("server RSS per connection, all (KiB)", ("idle", "kib_per_conn_all"), ".1f", ""),
        ("connects/s, devices (500 in flight)", ("idle", "connects_s"), ",.0f", ">= 1,000"),
        ("arrivals/s, new users (500 in flight)", ("idle", "arrivals_s"), ",.0f", ""),
        ("arrivals: presence frames", ("idle", "storm_frames"), ",.0f", ""),
        ("arrivals: s until quiet", ("idle", "storm_s"), ".1f", ""),
        (f"latency p50 at {args.rate}/s (ms)", ("latency", "p50"), ".1f", "<= 10 at 1,000/s"),
        (f"latency p99 at {args.rate}/s (ms)", ("latency", "p99"), ".1f", "<= 50 at 1,000/s"),
        ("latency frames received", ("latency", "received"), ",.0f", "all"),
        ("latency frames expected", ("latency", "expected"), ",.0f", ""),
        ("delivered events/s, p99 <= 250 ms", ("fanout", "best"), ",.0f", ">= 10,000"),
        (
            f"resume: {resume_n:,} clients 20 behind (s)",
            ("resume", "seconds"),
            ".2f",
            "<= 15 (10,000)",
        ),
        ("resume: clients complete", ("resume", "complete"), ",.0f", "all"),
        ("resume: events missing", ("resume", "missing"), ",.0f", "0"),
        ("resume: events repeated", ("resume", "repeated"), ",.0f", "0"),
    ]
    header = f"{'figure':<42} {'gateway':>12} {'floor':>12} {'ratio':>8}  target"
    print("\n" + header + "\n" + "-" * len(header))
    for label, path, spec, target in rows:
        ours, floor = get("gateway", *path), get("floor", *path)
        ratio = "-"
        if (
            isinstance(ours, (int, float))
            and isinstance(floor, (int, float))
            and floor
            and ours == ours
            and floor == floor
        ):
            ratio = f"{ours / floor:.2f}x"
        print(f"{label:<42} {fmt(ours, spec):>12} {fmt(floor, spec):>12} {ratio:>8}  {target}")
    print(
        "ratio = gateway / floor (latency, memory, time: lower is better; rates: higher is better)"
    )


async def wait_until_all_offline(redis: Redis, keys: Keys, limit_s: float = 90) -> None:
    """Wait until the sweeper has announced every user of the gateway's run offline. Those
    announcements are board entries, and the floor, which does not coalesce presence,
    would otherwise pay for the storm (one frame per departure per connection) in its own
    figures."""
    started = time.time()
    for _ in range(int(limit_s / 0.5)):
        if not await redis.zcard(keys.presence_online):
            break
        await asyncio.sleep(0.5)
    left = await redis.zcard(keys.presence_online)
    print(f"presence settled after {time.time() - started:.1f} s ({left} still online)", flush=True)


class Floor:
    """`--workers` processes of `bench/sse_floor.py` on one socket, as the gateway's."""

    def __init__(self, env: dict[str, str], port: int, workers: int, redis_url: str) -> None:
        self.port = port
        listener = bind("127.0.0.1", port)
        with listener:
            command = [sys.executable, str(ROOT / "bench/sse_floor.py"), "--fd",
                       str(listener.fileno()), "--redis-url", redis_url,
                       "--prefix", env["REDIS_PREFIX"]]  # fmt: skip
            self.procs = [
                start(command, env, pass_fds=(listener.fileno(),), stdout=subprocess.PIPE)
                for _ in range(workers)
            ]
        for proc in self.procs:  # each says so once its Redis clients are open
            assert proc.stdout is not None
            if b"ready" not in proc.stdout.readline():
                raise RuntimeError("a floor process did not start")

    def roots(self) -> list[int]:
        return [proc.pid for proc in self.procs]

    def stop(self) -> None:
        for proc in self.procs:
            stop(proc)


async def run(args: argparse.Namespace, services: Services, database: str) -> dict[str, Any]:
    results: dict[str, dict[str, Any]] = {}
    user_count = args.users or max(1, max(args.connections, args.resume_clients) // 4)
    sender, users = await seed_users(database, user_count)
    prefix = f"bench-{uuid.uuid4().hex[:6]}:"
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "REDIS_URL": services.redis_url,
        "JWT_SECRET": SECRET,
        "REDIS_PREFIX": prefix,
        "LOGIN_ATTEMPTS_PER_MINUTE": "100000",
        "SSE_QUEUE_FRAMES": str(args.queue_frames),
        "PYTHONUNBUFFERED": "1",
        "WORKER_HEALTH_PORT": "0",
    }
    ports = {"gateway": free_port(), "floor": free_port()}
    worker = start(gateway_command("worker"), env)
    gateway = Gateway(env, ports["gateway"], args.workers)
    bench: Bench | None = None
    try:
        gateway.wait_ready()
        roots = {"worker": [worker.pid], "gateway": [gateway.proc.pid]}
        bench = Bench(args, env, users, sender, ports, roots, services)
        await bench.clients.start()
        redis = Redis.from_url(services.redis_url)
        targets = ["gateway", "floor"] if args.target == "both" else [args.target]
        print(
            f"{user_count:,} users seeded; gateway: {args.workers} process(es) "
            f"{gateway.pids()}, worker pid {worker.pid}; "
            f"RLIMIT_NOFILE {resource.getrlimit(resource.RLIMIT_NOFILE)[0]:,}",
            flush=True,
        )
        for target in targets:
            floor = None
            if target == "floor":
                floor = Floor(env, ports["floor"], args.workers, services.redis_url)
                roots["floor"] = floor.roots()
            print(f"{target}:", flush=True)
            try:
                results[target] = await bench.target(target, redis)
            finally:
                if floor is not None:
                    floor.stop()
            if target == "gateway" and len(targets) > 1:
                await wait_until_all_offline(redis, Keys(prefix))
        await redis.aclose()
    finally:
        if bench is not None:
            bench.profiler.stop()
            await bench.clients.stop()
        gateway.stop()
        stop(worker)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=1000, help="notifications/s in the latency run")
    parser.add_argument("--seconds", type=int, default=5, help="length of the latency run")
    parser.add_argument("--step-seconds", type=float, default=3, help="length of each fan-out step")
    parser.add_argument(
        "--scenario",
        default="all",
        choices=("all", "idle", "latency", "fanout", "resume"),
    )
    parser.add_argument("--target", default="both", choices=("gateway", "floor", "both"))
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument(
        "--workers", type=int, default=usable_cores(), help="processes of each server"
    )
    parser.add_argument(
        "--shared-services", action="store_true", help="the servers provision finds, not our own"
    )
    parser.add_argument(
        "--users",
        type=int,
        default=0,
        help="technicians seeded (default: a quarter of the connections, each with 4 devices)",
    )
    parser.add_argument("--resume-clients", type=int, default=0, help="default: --connections")
    parser.add_argument("--resume-timeout", type=float, default=60)
    parser.add_argument("--queue-frames", type=int, default=1000, help="SSE_QUEUE_FRAMES")
    parser.add_argument(
        "--profile", type=Path, help="py-spy raw stacks of the server per phase here"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=1800, help="stop the whole run after this"
    )
    args = parser.parse_args()
    limit = raise_nofile(2 * max(args.connections, args.resume_clients) + 8192)  # children inherit
    print(f"RLIMIT_NOFILE raised to {limit:,}", flush=True)
    started = time.time()
    with throwaway_services(args.shared_services) as services:
        with throwaway_database(services, "bench") as database:
            results = asyncio.run(asyncio.wait_for(run(args, services, database), args.max_seconds))
    table(results, args)
    print(f"\n(total {time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
