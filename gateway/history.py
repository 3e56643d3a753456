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
from gateway.streams import as_text

# KEYS: the generation, its owner ("<replication id> <ms>": the primary it belongs to, and
# that primary's clock when it began). ARGV: a new generation, used when the current one
# is missing or belongs to another server. Returns the generation. Without INFO (a
# server that refuses it in scripts), a generation only ends with the data.
_GENERATION = """
local info = redis.pcall('INFO', 'replication')
local server = type(info) == 'string' and string.match(info, 'master_replid:(%w+)') or ''
local epoch = redis.call('GET', KEYS[1])
local owner = redis.call('GET', KEYS[2])
if epoch and owner and string.match(owner, '^(%S*)') == server then
  return epoch
end
if epoch and not owner then
  redis.call('SET', KEYS[2], server .. ' 0')
  return epoch
end
local now = redis.call('TIME')
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], server .. ' ' .. (now[1] * 1000 + math.floor(now[2] / 1000)))
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


async def began_ms(redis: Redis, keys: Keys) -> int:
    """When the current generation began, by its primary's clock (0: not known). Every
    stream entry appended since has a later id, and every cursor of the generation was
    given after it: what a reader following the new generation needs comes after it."""
    owner = as_text(await redis.get(keys.history_server)).split(" ")
    return int(owner[1]) if len(owner) == 2 and owner[1].isdigit() else 0
