"""Provisioning for real: embedded PostgreSQL and Redis start, serve, stop and come back.

"No local server" is simulated by pointing the local probes at port 1, where nothing
listens; the embedded servers then started are genuine processes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import psycopg
import pytest
import redis
from redis.asyncio import Redis

from gateway.ops.provision import (
    EMBEDDED_ONLY,
    database_name,
    drop_database,
    ensure_database,
    provision,
    replace_database,
)

CLOSED = ("127.0.0.1", 1)
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Embedded:
    data_dir: Path
    env: dict[str, str]
    logs: list[str]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    """One embedded PostgreSQL + Redis pair shared by this module's tests."""
    data_dir = tmp_path_factory.mktemp("embedded")
    logs: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        for name in ("DATABASE_URL", "REDIS_URL", EMBEDDED_ONLY):
            patch.delenv(name, raising=False)
        with provision(data_dir, logs.append, local_pg=CLOSED, local_redis=CLOSED) as env:
            yield Embedded(data_dir, env, logs)


@pytest.fixture
def no_env_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine that has set nothing (this module tests each choice itself)."""
    for name in ("DATABASE_URL", "REDIS_URL", EMBEDDED_ONLY):
        monkeypatch.delenv(name, raising=False)


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def answers(url: str) -> bool:
    try:
        socket.create_connection(address(url), timeout=2).close()
    except OSError:
        return False
    return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_embedded_servers_start_and_say_so(embedded: Embedded) -> None:
    home = embedded.data_dir
    expected = [
        f"PostgreSQL: none answering on 127.0.0.1:1, starting an embedded one under {home / 'pg'}",
        f"Redis: none answering on 127.0.0.1:1, starting an embedded one under {home / 'redis'}",
    ]
    for line in expected:
        assert line in embedded.logs
    assert any("initialising a new cluster" in line for line in embedded.logs)
    assert (home / "pg" / "PG_VERSION").exists()
    assert database_name(embedded.env["DATABASE_URL"]) == "floorbell"
    assert address(embedded.env["DATABASE_URL"])[0] == "127.0.0.1"
    assert address(embedded.env["REDIS_URL"])[0] == "127.0.0.1"


async def test_asyncpg_and_psycopg_both_connect(embedded: Embedded) -> None:
    url = embedded.env["DATABASE_URL"]
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT current_database()") == "floorbell"
    finally:
        await conn.close()
    with psycopg.connect(url) as sync_conn:
        row = sync_conn.execute("SELECT current_database(), current_user").fetchone()
    assert row == ("floorbell", "postgres")


async def test_redis_serves_without_persistence(embedded: Embedded) -> None:
    client = Redis.from_url(embedded.env["REDIS_URL"], decode_responses=True)
    try:
        await client.set("floorbell:probe", "ok")
        assert await client.get("floorbell:probe") == "ok"
        assert (await client.config_get("save"))["save"] == ""
        assert (await client.config_get("appendonly"))["appendonly"] == "no"
    finally:
        await client.aclose()


def test_answering_local_servers_are_used(
    embedded: Embedded, tmp_path: Path, no_env_urls: None
) -> None:
    logs: list[str] = []
    pg, rd = address(embedded.env["DATABASE_URL"]), address(embedded.env["REDIS_URL"])
    with provision(tmp_path, logs.append, local_pg=pg, local_redis=rd) as env:
        assert env == {
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{pg[1]}/floorbell",
            "REDIS_URL": f"redis://127.0.0.1:{rd[1]}/0",
        }
    assert logs[0].startswith(f"PostgreSQL: using the server answering on 127.0.0.1:{pg[1]}")
    assert logs[1].startswith(f"Redis: using the server answering on 127.0.0.1:{rd[1]}")
    assert not (tmp_path / "pg").exists() and not (tmp_path / "redis").exists()
    assert answers(embedded.env["DATABASE_URL"]), "a server it did not start stays up"


def test_environment_urls_win_and_database_is_created(
    embedded: Embedded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_env_urls: None
) -> None:
    database_url = replace_database(embedded.env["DATABASE_URL"], f"fb_env_{uuid.uuid4().hex}")
    redis_url = embedded.env["REDIS_URL"].replace("/0", "/3")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    logs: list[str] = []
    try:
        with provision(tmp_path, logs.append, local_pg=CLOSED, local_redis=CLOSED) as env:
            assert env == {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
            with psycopg.connect(database_url) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        drop_database(database_url)
    assert logs[0].startswith("PostgreSQL: using DATABASE_URL from the environment")
    assert logs[1].startswith("Redis: using REDIS_URL from the environment")
    assert not (tmp_path / "pg").exists()


def test_embedded_only_ignores_the_environment_and_local_servers(
    embedded: Embedded, monkeypatch: pytest.MonkeyPatch, no_env_urls: None
) -> None:
    monkeypatch.setenv(EMBEDDED_ONLY, "1")
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/elsewhere")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    pg, rd = address(embedded.env["DATABASE_URL"]), address(embedded.env["REDIS_URL"])
    logs: list[str] = []
    with provision(embedded.data_dir, logs.append, local_pg=pg, local_redis=rd) as env:
        assert env == embedded.env  # the embedded pair, though a local pair answers
    assert logs[0] == f"PostgreSQL: {EMBEDDED_ONLY} is set, sharing the embedded one under " + (
        f"{embedded.data_dir / 'pg'} (process {os.getpid()} started it)"
    )
    assert logs[2].startswith(f"Redis: {EMBEDDED_ONLY} is set, sharing the embedded one")


def test_nested_provision_shares_and_leaves_servers_running(
    embedded: Embedded, no_env_urls: None
) -> None:
    logs: list[str] = []
    with provision(embedded.data_dir, logs.append, local_pg=CLOSED, local_redis=CLOSED) as env:
        assert env == embedded.env
    assert any("sharing the embedded one" in line for line in logs)
    assert not any("stopped" in line for line in logs)
    assert answers(embedded.env["DATABASE_URL"]) and answers(embedded.env["REDIS_URL"])


async def test_ensure_and_drop_database(embedded: Embedded) -> None:
    url = replace_database(embedded.env["DATABASE_URL"], f"fb_test_{uuid.uuid4().hex}")
    ensure_database(url)
    ensure_database(url)  # idempotent
    conn = await asyncpg.connect(url)
    try:
        drop_database(url)  # FORCE: an open session does not block the drop
    finally:
        await conn.close()
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await asyncpg.connect(url)
    drop_database(url)  # idempotent


def test_stop_then_restart_reuses_data(tmp_path: Path, no_env_urls: None) -> None:
    first: list[str] = []
    with provision(tmp_path, first.append, local_pg=CLOSED, local_redis=CLOSED) as env:
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (note text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")
        redis_pid = int((tmp_path / "redis" / "redis.pid").read_text())
    assert first[-2:] == [
        "Redis: stopped the embedded server",
        "PostgreSQL: stopped the embedded server",
    ]
    assert not answers(env["DATABASE_URL"]) and not answers(env["REDIS_URL"])
    assert not (tmp_path / "pg" / "postmaster.pid").exists()
    assert not pid_alive(redis_pid)

    second: list[str] = []
    with provision(tmp_path, second.append, local_pg=CLOSED, local_redis=CLOSED) as env:
        with psycopg.connect(env["DATABASE_URL"]) as conn:
            assert conn.execute("SELECT note FROM kept").fetchall() == [("still here",)]
    assert f"PostgreSQL: reusing the existing data in {tmp_path / 'pg'}" in second
    assert not any("initialising" in line for line in second)
    assert not answers(env["DATABASE_URL"]) and not answers(env["REDIS_URL"])


CHILD = """
import json, sys, time
from pathlib import Path
from gateway.ops.provision import provision
with provision(Path(sys.argv[1]), lambda _: None,
               local_pg=("127.0.0.1", 1), local_redis=("127.0.0.1", 1)) as env:
    print(json.dumps(env), flush=True)
    time.sleep(120)
"""


def test_servers_of_a_killed_process_are_adopted_and_stopped(
    tmp_path: Path, no_env_urls: None
) -> None:
    env_vars = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        env=env_vars,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        orphaned = json.loads(child.stdout.readline())
    finally:
        child.send_signal(signal.SIGKILL)  # no clean-up runs: the servers are orphaned
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert answers(orphaned["DATABASE_URL"]) and answers(orphaned["REDIS_URL"])

    logs: list[str] = []
    with provision(tmp_path, logs.append, local_pg=CLOSED, local_redis=CLOSED) as env:
        assert env == orphaned
        with redis.Redis.from_url(env["REDIS_URL"]) as client:
            assert client.ping()
    assert any("PostgreSQL: none answering on 127.0.0.1:1, adopting" in line for line in logs)
    assert any("Redis: none answering on 127.0.0.1:1, adopting" in line for line in logs)
    assert not answers(env["DATABASE_URL"]) and not answers(env["REDIS_URL"])
