"""How many gateway processes `floorbell serve` runs: `--workers`, else
`WEB_CONCURRENCY`, else one per core this process may use."""

from __future__ import annotations

import os

import pytest

from gateway.config import ConfigError, Settings
from gateway.processes.cli import build_parser


def test_one_process_per_usable_core_by_default() -> None:
    assert Settings.from_env({}).web_concurrency == len(os.sched_getaffinity(0))


def test_web_concurrency_sets_the_count() -> None:
    assert Settings.from_env({"WEB_CONCURRENCY": "3"}).web_concurrency == 3


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_a_malformed_web_concurrency_fails_loudly(value: str) -> None:
    with pytest.raises(ConfigError, match="WEB_CONCURRENCY"):
        Settings.from_env({"WEB_CONCURRENCY": value})


def test_workers_flag() -> None:
    assert build_parser().parse_args(["serve", "--workers", "4"]).workers == 4
    assert build_parser().parse_args(["serve"]).workers is None  # the setting decides


@pytest.mark.parametrize("value", ["0", "-2", "x", "²"])
def test_a_malformed_workers_flag_is_refused(value: str) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--workers", value])
