"""`floorbell serve --workers N`: N gateway processes sharing one port, supervised.

The supervisor binds the port once and hands the socket to every child (`python -m
gateway serve --workers 1` with the socket's descriptor): the kernel hands each new
connection to whichever child accepts first, and the socket stays open while children
come and go, so a restart never refuses a connection. Each child is an instance like any
other — its own hub and instance id — so resume, presence and shutdown work across
them as across machines.

- A child that dies is logged and replaced (with backoff if its successors keep dying).
- SIGHUP restarts the children one at a time: a fresh process (new code included) is
  started and ready before the one it replaces is stopped, so the others keep serving;
  the stopped one's SSE clients reconnect and resume by id.
- SIGINT or SIGTERM stops every child in its two stages (streams end, then Uvicorn's
  shutdown), and kills whichever is still running after STOP_DEADLINE_S.
- A child dies with its supervisor (PR_SET_PDEATHSIG): none is left serving alone.

Uvicorn's own `--workers` supervisor stops a process before its successor is ready,
waits for it without a deadline and names no instance, hence this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass

from gateway.config import Settings
from gateway.retry import Backoff

log = logging.getLogger(__name__)
RESTART_SIGNAL = signal.SIGHUP
READY_TIMEOUT_S = 60.0
STOP_DEADLINE_S = 15.0  # from SIGTERM to SIGKILL; a child's own stop takes at most ~10 s
READY = b"ready\n"


@dataclass(eq=False)  # each child is itself, whatever its fields
class Child:
    slot: int
    instance_id: str
    proc: asyncio.subprocess.Process

    def describe(self) -> str:
        return f"gateway process {self.instance_id} (pid {self.proc.pid})"


def bind(host: str, port: int) -> socket.socket:
    """The shared socket, bound but not listening: the first child to serve calls
    `listen`, so nothing accepts connections before a gateway can answer them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def child_env(settings: Settings) -> dict[str, str]:
    """The environment of every child: the supervisor's, with the secrets it resolved
    (so no two children create the same key file at once)."""
    env = dict(os.environ)
    resolved = {
        "JWT_SECRET": settings.jwt_secret,
        "VAPID_PUBLIC_KEY": settings.vapid_public_key,
        "VAPID_PRIVATE_KEY": settings.vapid_private_key,
    }
    env.update({name: value for name, value in resolved.items() if value})
    return env


class ProcessSupervisor:
    def __init__(
        self, listener: socket.socket, workers: int, env: dict[str, str], base_id: str,
        *, verbose: bool = False,
    ) -> None:  # fmt: skip
        self._listener = listener
        self._workers = workers
        self._env = env
        self._base_id = base_id
        self._verbose = verbose
        self._stopping = asyncio.Event()
        self._rolls: list[asyncio.Queue[asyncio.Future[bool]]] = [
            asyncio.Queue() for _ in range(workers)
        ]
        self._live: set[Child] = set()  # started and not yet seen to exit
        self._generation = [0] * workers

    async def run(self) -> int:
        """Serve until SIGINT or SIGTERM; the exit status (1 if the first start failed)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stopping.set)
        roller: asyncio.Task[None] | None = None
        keepers: list[asyncio.Task[None]] = []
        try:
            starting = asyncio.gather(*(self._spawn(slot) for slot in range(self._workers)))
            stopped = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait((starting, stopped), return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if self._stopping.is_set():
                starting.cancel()
                return 0
            first = starting.result()
            if None in first:
                log.error("a gateway process failed to start; stopping the others")
                return 1
            host, port = self._listener.getsockname()[:2]
            log.info(
                "%d gateway processes serving http://%s:%d (%s restarts them one at a time)",
                self._workers, host, port, RESTART_SIGNAL.name,
            )  # fmt: skip
            keepers = [asyncio.create_task(self._keep(child)) for child in first if child]
            restart = asyncio.Event()
            loop.add_signal_handler(RESTART_SIGNAL, restart.set)
            roller = asyncio.create_task(self._roll_on(restart))
            await self._stopping.wait()
            return 0
        finally:
            self._stopping.set()
            for task in (*keepers, *([roller] if roller else [])):
                task.cancel()
            await asyncio.gather(*keepers, *([roller] if roller else []), return_exceptions=True)
            await self._stop_all()

    # -- children -----------------------------------------------------------------------

    async def _spawn(self, slot: int) -> Child | None:
        """Start a child for `slot`: the child once it is ready, None if it failed to get there."""
        self._generation[slot] += 1
        instance_id = f"{self._base_id}-{slot + 1}.{self._generation[slot]}"
        read_fd, write_fd = os.pipe()
        listen_fd = self._listener.fileno()
        verbose = ["-v"] if self._verbose else []
        command = [sys.executable, "-m", "gateway", *verbose, "serve", "--workers", "1",
                   "--listen-fd", str(listen_fd), "--ready-fd", str(write_fd)]  # fmt: skip
        try:
            proc = await asyncio.create_subprocess_exec(
                *command,
                env={**self._env, "INSTANCE_ID": instance_id},
                pass_fds=(listen_fd, write_fd),
                stdin=asyncio.subprocess.DEVNULL,
            )
        finally:
            os.close(write_fd)  # the child's copy is the only one left: EOF when it dies
        child = Child(slot, instance_id, proc)
        self._live.add(child)
        if await self._ready(read_fd, child):
            log.info("%s ready", child.describe())
            return child
        log.error("%s did not get ready (exit status %s)", child.describe(), proc.returncode)
        await self._retire(child)
        return None

    async def _ready(self, read_fd: int, child: Child) -> bool:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        pipe = os.fdopen(read_fd, "rb", buffering=0)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe
        )
        try:
            return await asyncio.wait_for(reader.readline(), READY_TIMEOUT_S) == READY
        except TimeoutError:
            return False
        finally:
            transport.close()

    async def _keep(self, child: Child) -> None:
        """Watch the child of one slot: replace it when it dies, or when a rolling
        restart asks (then the successor is ready before the child is stopped)."""
        slot = child.slot
        while True:
            exited = asyncio.ensure_future(child.proc.wait())
            asked = asyncio.ensure_future(self._rolls[slot].get())
            try:
                await asyncio.wait((exited, asked), return_when=asyncio.FIRST_COMPLETED)
            finally:
                exited.cancel()
                asked.cancel()
            if asked.done() and not asked.cancelled():
                reply = asked.result()
                successor = await self._spawn(slot)
                if successor is not None:
                    await self._retire(child)
                    child = successor
                reply.set_result(successor is not None)
            else:
                self._live.discard(child)
                log.warning("%s exited (%s); starting another", child.describe(),
                            _status(child.proc.returncode))  # fmt: skip
                child = await self._replace(slot)

    async def _replace(self, slot: int) -> Child:
        backoff = Backoff(base_s=1.0, cap_s=30.0)
        while True:
            successor = await self._spawn(slot)
            if successor is not None:
                return successor
            delay = backoff.next_delay()
            log.warning("gateway slot %d: trying again in %.1f s", slot + 1, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def _roll_on(self, restart: asyncio.Event) -> None:
        """On each restart signal, replace the children one slot after the other; a
        successor that fails to start ends the round (the rest keep their process)."""
        while True:
            await restart.wait()
            restart.clear()
            log.info("%s: restarting the gateway processes one at a time", RESTART_SIGNAL.name)
            for slot in range(self._workers):
                reply: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
                self._rolls[slot].put_nowait(reply)
                if not await reply:
                    log.error("rolling restart stopped: the new process of slot %d failed",
                              slot + 1)  # fmt: skip
                    break
            else:
                log.info("rolling restart done")

    async def _retire(self, child: Child) -> None:
        """Stop one child in its two stages; kill it past the deadline."""
        if child.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(child.proc.wait(), STOP_DEADLINE_S)
        except TimeoutError:
            log.warning("%s still running after %.0f s: killed", child.describe(),
                        STOP_DEADLINE_S)  # fmt: skip
            with contextlib.suppress(ProcessLookupError):
                child.proc.kill()
            await child.proc.wait()
        self._live.discard(child)

    async def _stop_all(self) -> None:
        running = list(self._live)
        if running:
            log.info("stopping %d gateway processes", len(running))
        await asyncio.gather(*(self._retire(child) for child in running))


def _status(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        return f"signal {signal.Signals(-returncode).name}"
    return f"status {returncode}"


def supervise(settings: Settings, host: str, port: int, workers: int, verbose: bool) -> int:
    """Run `workers` gateway processes on host:port until stopped; the exit status."""
    try:
        listener = bind(host, port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc)
        return 1
    with listener:
        supervisor = ProcessSupervisor(
            listener, workers, child_env(settings), settings.instance_id, verbose=verbose
        )
        return asyncio.run(supervisor.run())


def die_with_supervisor() -> None:
    """Ask the kernel for SIGTERM when the supervisor dies (Linux), so a killed
    supervisor leaves no child serving on its own. The race with a supervisor that died
    before this call is closed by the ready pipe: writing to it then fails."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
