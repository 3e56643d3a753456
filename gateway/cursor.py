"""The SSE id: one cursor over the two streams a connection follows.

A connection reads its user's own stream and the board stream (board changes, presence,
broadcasts to all). The id `<user id>:<user stream id>:<board stream id>` restores the
position in both on resume; ids of one connection compare in order component-wise, and
the user id makes an id replayed against another account detectable.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.streams import parse_id

START = "0-0"


@dataclass(frozen=True)
class Cursor:
    user_id: int
    user_pos: str = START
    board_pos: str = START

    def encode(self) -> str:
        return f"{self.user_id}:{self.user_pos}:{self.board_pos}"


class CursorRejected(ValueError):
    """The id cannot be resumed from; `reason` goes to the client in a `reset` event."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_cursor(raw: str, user_id: int) -> Cursor:
    parts = raw.strip().split(":")
    if len(parts) != 3 or not parts[0].isdigit() or not all(parse_id(p) for p in parts[1:]):
        raise CursorRejected("malformed")
    if int(parts[0]) != user_id:
        raise CursorRejected("foreign")
    return Cursor(user_id, parts[1], parts[2])


def id_key(stream_id: str | bytes) -> tuple[int, int]:
    """Stream ids as comparable tuples."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, seq = text.split("-")
    return int(ms), int(seq)
