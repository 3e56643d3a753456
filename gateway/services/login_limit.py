"""The login limiter's counters: attempts per subject (an email, a client address) in a
window, counted in Redis.

Each count is one script, so a counter never exists without its expiry: a failure
between an `INCR` and an `EXPIRE` would lock someone out for good. A counter found
without one (left by an older version) gets it at the next attempt.
"""

from __future__ import annotations

from redis.asyncio import Redis

# KEYS: the counter. ARGV: the window in seconds. Returns the count, this attempt included.
_COUNT = """
local count = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return count
"""


async def count_attempts(redis: Redis, counters: list[str], window_s: int) -> list[int]:
    """Count one attempt on each counter (one round trip); the counts."""
    async with redis.pipeline(transaction=False) as pipe:
        for counter in counters:
            pipe.eval(_COUNT, 1, counter, window_s)
        return [int(count) for count in await pipe.execute()]
