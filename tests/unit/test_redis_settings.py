"""Where Redis is found: one URL, or the primary some Sentinels name."""

from __future__ import annotations

import pytest
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.sentinel import SentinelConnectionPool

from gateway.config import ConfigError, Settings
from gateway.redis_client import describe_redis, redis_client, redis_pool_client


def test_sentinels_are_host_port_pairs() -> None:
    settings = Settings.from_env({"REDIS_SENTINELS": "10.0.0.1:26379, [::1]:26380,"})
    assert settings.redis_sentinels == (("10.0.0.1", 26379), ("::1", 26380))
    assert settings.redis_sentinel_service == "mymaster"
    assert settings.redis_sentinel_password == ""
    assert Settings.from_env({}).redis_sentinels == ()
    named = Settings.from_env({"REDIS_SENTINELS": "s:1", "REDIS_SENTINEL_SERVICE": "floor",
                               "REDIS_SENTINEL_PASSWORD": "s3cret"})  # fmt: skip
    assert named.redis_sentinel_service == "floor"
    assert named.redis_sentinel_password == "s3cret"


@pytest.mark.parametrize(
    "raw", ["sentinel", "host:", ":26379", "host:port", "host:70000", "host:²"]
)
def test_a_malformed_sentinel_fails_at_start_up(raw: str) -> None:
    with pytest.raises(ConfigError, match="REDIS_SENTINELS"):
        Settings.from_env({"REDIS_SENTINELS": raw})


async def test_the_sentinels_take_precedence_over_the_address_of_the_url() -> None:
    settings = Settings(
        redis_url="redis://app:secret@elsewhere:6390/3",
        redis_sentinels=(("127.0.0.1", 26379),),
        redis_sentinel_service="floor",
        instance_id="gw-1",
    )
    for client in (redis_client(settings, "hub-reader", single_connection=True),
                   redis_pool_client(settings, "gateway", max_connections=8)):  # fmt: skip
        pool = client.connection_pool
        assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "floor"
        options = pool.connection_kwargs
        assert (options["db"], options["username"], options["password"]) == (3, "app", "secret")
        assert options["client_name"].startswith("floorbell:gw-1:")
        assert options["socket_keepalive"] and options["socket_timeout"]
        await client.aclose()
    bounded = redis_pool_client(settings, "gateway", max_connections=8).connection_pool
    assert isinstance(bounded, BlockingConnectionPool) and bounded.max_connections == 8
    assert "floor" in describe_redis(settings) and "secret" not in describe_redis(settings)
    plain = Settings(redis_url="redis://app:secret@elsewhere:6390/3")
    assert not isinstance(redis_client(plain, "x").connection_pool, SentinelConnectionPool)
    assert describe_redis(plain) == "redis://app:***@elsewhere:6390/3"
