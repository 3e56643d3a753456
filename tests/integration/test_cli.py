"""The `floorbell` console script, run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.processes.cli import build_parser

FLOORBELL = str(Path(sys.executable).parent / "floorbell")
SUBCOMMANDS = ("up", "migrate", "seed", "vapid", "serve", "worker", "clock", "doctor")


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FLOORBELL, *args], capture_output=True, text=True, timeout=60,
                          env=env, check=False)  # fmt: skip


def test_every_subcommand_is_tested() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices or ()) == set(SUBCOMMANDS)


def test_help() -> None:
    result = _run("--help")
    assert result.returncode == 0, result.stderr
    for name in SUBCOMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_help(name: str) -> None:
    result = _run(name, "--help")
    assert result.returncode == 0, result.stderr
    assert f"usage: floorbell {name}" in result.stdout


def test_migrate_says_the_schema_is_up_to_date(database_url: str, tmp_path: Path) -> None:
    # The data dir is a temporary one: no secrets are written into the checkout.
    env = {**os.environ, "DATABASE_URL": database_url, "FLOORBELL_DATA_DIR": str(tmp_path)}
    result = _run("migrate", env=env)
    assert result.returncode == 0, result.stderr
    assert "schema is up to date" in result.stdout
