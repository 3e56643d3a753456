"""Whether a resume position is still in its stream, from XINFO STREAM as Redis 7 and
Redis 6.2 (the embedded one, without `entries-added`) answer it."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.realtime.cursor import CursorRejected
from gateway.realtime.hub import _check_position


def info(first: str | None, last: str, length: int, added: int | None) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "length": length,
        "last-generated-id": last,
        "first-entry": (first, {}) if first else None,
    }
    if added is not None:
        reply["entries-added"] = added  # Redis 7.0 and later only
    return reply


REDIS_7_AND_6 = pytest.mark.parametrize("version", [7, 6])


def shaped(version: int, first: str | None, last: str, length: int, added: int) -> Any:
    return info(first, last, length, added if version == 7 else None)


@REDIS_7_AND_6
@pytest.mark.parametrize("pos", ["0-0", "10-0", "15-3", "20-0"])
def test_positions_in_an_untrimmed_stream_resume(version: int, pos: str) -> None:
    _check_position(shaped(version, "10-0", "20-0", 3, 3), pos)


@REDIS_7_AND_6
@pytest.mark.parametrize("pos", ["12-0", "20-0"])
def test_positions_still_held_after_trimming_resume(version: int, pos: str) -> None:
    _check_position(shaped(version, "12-0", "20-0", 2, 5), pos)


@REDIS_7_AND_6
@pytest.mark.parametrize("first", ["12-0", None])
def test_an_entry_trimmed_away_is_expired(version: int, first: str | None) -> None:
    with pytest.raises(CursorRejected) as rejected:
        _check_position(shaped(version, first, "20-0", 2 if first else 0, 5), "10-0")
    assert rejected.value.reason == "expired"


@REDIS_7_AND_6
def test_a_position_past_the_stream_is_unknown(version: int) -> None:
    with pytest.raises(CursorRejected) as rejected:
        _check_position(shaped(version, "10-0", "20-0", 3, 3), "21-0")
    assert rejected.value.reason == "unknown"


def test_redis_7_tells_a_trimmed_start() -> None:
    with pytest.raises(CursorRejected):
        _check_position(info("12-0", "20-0", 2, 5), "0-0")


def test_a_missing_stream_resumes_only_from_its_start() -> None:
    _check_position(Exception("no such key"), "0-0")
    with pytest.raises(CursorRejected):
        _check_position(Exception("no such key"), "10-0")
