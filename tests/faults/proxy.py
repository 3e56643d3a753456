"""A TCP proxy the test controls, between a process and a service, to make network faults
real: cut every connection (each side gets a reset), black-hole them (bytes are taken and
never delivered, the sockets stay open: a half-open NAT, a partition), refuse new ones
for a while, or delay all traffic."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

CHUNK = 65536


@dataclass(eq=False)
class _Pair:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    pumps: list[asyncio.Task[None]] = field(default_factory=list)
    holed: bool = False  # was black-holed: its byte stream is corrupt, it cannot heal

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            writer.transport.abort()
        for pump in self.pumps:
            pump.cancel()


class Proxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.delay_s = 0.0
        self.accepted = 0
        self._blackhole = False
        self._pairs: set[_Pair] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> Proxy:
        """Listen (again, on the same port once it had one)."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def redis_url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def postgres_url(self, database_url: str) -> str:
        """`database_url` (a URL of the upstream server) through the proxy."""
        rest = database_url.split("@", 1)[1].split("/", 1)[1]
        user = database_url.split("://", 1)[1].split("@", 1)[0]
        return f"postgresql://{user}@127.0.0.1:{self.port}/{rest}"

    @property
    def connections(self) -> int:
        return len(self._pairs)

    # -- faults ---------------------------------------------------------------------------

    def cut(self) -> None:
        """Reset every connection now (new ones are accepted as usual)."""
        for pair in list(self._pairs):
            pair.abort()
        self._pairs.clear()

    def blackhole(self) -> None:
        """From now on, nothing reaches the other side, on open and new connections."""
        self._blackhole = True
        for pair in self._pairs:
            pair.holed = True

    def heal(self) -> None:
        """Forward again. A black-holed connection lost bytes, so it is reset: its ends
        find out at once, as they would when a partition heals and TCP gives up."""
        self._blackhole = False
        for pair in [pair for pair in self._pairs if pair.holed]:
            pair.abort()
            self._pairs.discard(pair)

    async def refuse(self) -> None:
        """Stop listening (connections are refused) and cut what is open."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.cut()

    async def stop(self) -> None:
        await self.refuse()

    # -- forwarding -----------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        pair = _Pair(writer, up_writer, holed=self._blackhole)
        self._pairs.add(pair)
        pair.pumps = [
            asyncio.create_task(self._pump(pair, reader, up_writer)),
            asyncio.create_task(self._pump(pair, up_reader, writer)),
        ]

    async def _pump(
        self, pair: _Pair, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while chunk := await reader.read(CHUNK):
                if pair.holed:
                    continue  # taken, never delivered
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                writer.write(chunk)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if not pair.holed:  # one side closed: so does the other
                with contextlib.suppress(OSError):
                    writer.close()
                self._pairs.discard(pair)
