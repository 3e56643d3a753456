"""Redis Streams plumbing shared by the relay, the router and the gateway: the
idempotent append and reading positions. What an entry holds is `gateway.wire`'s."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from gateway import wire
from gateway.wire import START, now_ms

# Append each entry only if its dedup member was never recorded: a relay or router that
# crashes after appending but before acknowledging repeats the call, never the entry.
# With a third key, each entry is mirrored there (same script, so atomically) tagged with
# ARGV[3] and its id in the first stream. An entry with a version (a person's unread
# counts) is appended only if newer than the last version recorded for the tag in the
# fourth key, so a count taken earlier but arriving later is dropped.
# KEYS: stream, dedup zset[, mirror[, versions hash]]. ARGV: now_ms, keep_ms, tag, the
# four field names (type, envelope, user, user entry), then (member, type, envelope,
# version or "") quadruples.
_APPEND_ONCE = """
local appended = {}
local t, e, u, i_ = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
for i = 8, #ARGV, 4 do
  local version = ARGV[i + 3]
  local newer = version == ''
    or tonumber(version) > tonumber(redis.call('HGET', KEYS[4], ARGV[3]) or '0')
  if newer and redis.call('ZADD', KEYS[2], 'NX', ARGV[1], ARGV[i]) == 1 then
    if version ~= '' then
      redis.call('HSET', KEYS[4], ARGV[3], version)
    end
    local id = redis.call('XADD', KEYS[1], '*', t, ARGV[i + 1], e, ARGV[i + 2])
    if KEYS[3] then
      redis.call('XADD', KEYS[3], '*', u, ARGV[3], i_, id, t, ARGV[i + 1], e, ARGV[i + 2])
    end
    table.insert(appended, id)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
return appended
"""

DEDUP_KEEP_MS = 48 * 3600 * 1000

# redis-py types its stream replies loosely; these are their shapes with bytes replies.
Entry = tuple[bytes, dict[bytes, bytes]]
StreamReply = list[tuple[bytes, list[Entry]]]
# What to append: (dedup member, type, envelope), and a version for a versioned entry.
Append = tuple[str, str, str] | tuple[str, str, str, int]
Mirror = tuple[str, str]  # (stream, tag)


async def append_once(
    redis: Redis,
    stream: str,
    dedup_key: str,
    entries: Sequence[Append],
    mirror: Mirror | None = None,
    versions: str | None = None,
) -> list[str]:
    """Append (member, type, envelope[, version]) entries that were not appended before;
    `mirror` (stream, tag) also appends each to a second stream, tagged; a versioned
    entry goes only if newer than the tag's last version in the `versions` hash."""
    if not entries:
        return []
    numkeys, keys_and_args = _append_once_call(stream, dedup_key, entries, mirror, versions)
    result = await redis.eval(_APPEND_ONCE, numkeys, *keys_and_args)
    return [as_text(item) for item in result]


def queue_append_once(
    pipe: Pipeline,
    stream: str,
    dedup_key: str,
    entries: Sequence[Append],
    mirror: Mirror | None = None,
    versions: str | None = None,
) -> None:
    """`append_once` queued on a pipeline, so many appends share one round trip; its
    reply (the appended ids) comes with the pipeline's."""
    if entries:
        numkeys, keys_and_args = _append_once_call(stream, dedup_key, entries, mirror, versions)
        pipe.eval(_APPEND_ONCE, numkeys, *keys_and_args)


def _append_once_call(
    stream: str,
    dedup_key: str,
    entries: Sequence[Append],
    mirror: Mirror | None,
    versions: str | None,
) -> tuple[int, list[str | int]]:
    """The key count, then the keys and arguments `_APPEND_ONCE` expects."""
    if versions and not mirror:
        raise ValueError("versioned entries are versioned per mirror tag: give a mirror")
    keys: list[str | int] = [stream, dedup_key]
    keys += [mirror[0]] if mirror else []
    keys += [versions] if versions else []
    args: list[str | int] = [now_ms(), DEDUP_KEEP_MS, mirror[1] if mirror else ""]
    args += [wire.TYPE, wire.ENVELOPE, wire.USER, wire.USER_ENTRY]
    for entry in entries:
        args += [*entry[:3], entry[3] if len(entry) == 4 else ""]
    return len(keys), keys + args


def as_text(value: bytes | str | None) -> str:
    """A Redis reply as text (a client may decode replies or not; nil is empty)."""
    return value.decode() if isinstance(value, bytes) else (value or "")


def min_id_for_age(age_ms: int) -> str:
    return f"{max(now_ms() - age_ms, 0)}-0"


def as_reply(reply: object) -> StreamReply:
    """An XREAD / XREADGROUP reply (None on timeout) as a list."""
    return cast(StreamReply, reply or [])


async def last_id(redis: Redis, stream: str) -> str:
    last = cast(list[Entry], await redis.xrevrange(stream, count=1))
    return last[0][0].decode() if last else START
