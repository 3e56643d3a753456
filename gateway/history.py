"""The generation of the stream history (`Keys.history_epoch`): what every cursor carries
and the relay records, so that a history Redis no longer holds is recognised.

A generation belongs to one Redis primary, known by its replication id: a server that
restarts, or a replica promoted by a Sentinel failover, takes a new replication id. A
promoted replica holds the old generation's key (it was replicated) but maybe not the
last writes of the old primary (replication is asynchronous), so the generation is
renewed whenever the primary's replication id is not the one it was created on: the
first reader after a failover starts a new one, clients resuming are told
`history_lost`, and the relay gives again what the lost part held unfinished. A key with
no recorded server (left by an earlier version) is adopted as it is.
"""

from __future__ import annotations

import secrets

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from gateway.keys import Keys

# KEYS: the generation, the replication id it belongs to. ARGV: a new generation, used
# when the current one is missing or belongs to another server. Returns the generation.
_GENERATION = """
local info = redis.call('INFO', 'replication')
local server = string.match(info, 'master_replid:(%w+)') or ''
local epoch = redis.call('GET', KEYS[1])
local owner = redis.call('GET', KEYS[2])
if epoch and (owner == server or not owner) then
  if not owner then
    redis.call('SET', KEYS[2], server)
  end
  return epoch
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], server)
return ARGV[1]
"""


def queue_generation(pipe: Pipeline, keys: Keys) -> None:
    """The history's generation, created or renewed as needed: one reply, its value."""
    pipe.eval(_GENERATION, 2, keys.history_epoch, keys.history_server, secrets.token_hex(4))


async def generation(redis: Redis, keys: Keys) -> str:
    async with redis.pipeline(transaction=False) as pipe:
        queue_generation(pipe, keys)
        (epoch,) = await pipe.execute()
    return as_text(epoch)


def as_text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")
