"""The resume cursor: one SSE id over the two streams a connection follows.

A connection reads its user's own stream and the board stream (board changes, presence,
broadcasts to all). The id (`gateway.wire.sse_id`) restores the position in both on
resume; ids of one connection compare in order component-wise, the user id makes an id
replayed against another account detectable, and the history's generation (epoch) one
from a history Redis has since lost. Clients treat the id as opaque.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.wire import START, parse_stream_id, sse_id

_EPOCH = re.compile(r"[0-9a-f]{1,32}", re.ASCII)


@dataclass(frozen=True)
class Cursor:
    user_id: int
    user_pos: str = START
    board_pos: str = START
    epoch: str = ""

    def encode(self) -> str:
        return sse_id(self.user_id, self.user_pos, self.board_pos, self.epoch)


class CursorRejected(ValueError):
    """The id cannot be resumed from; `reason` goes to the client in a `reset` event."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_cursor(raw: str, user_id: int) -> Cursor:
    """The cursor an id names. An id of the earlier form, without a generation, parses
    with none: it resumes nothing (`history_lost`)."""
    parts = raw.strip().split(":")
    if (
        len(parts) not in (3, 4)
        or not (parts[0].isascii() and parts[0].isdigit())
        or not all(parse_stream_id(p) for p in parts[1:3])
        or not (len(parts) == 3 or _EPOCH.fullmatch(parts[3]))
    ):
        raise CursorRejected("malformed")
    if int(parts[0]) != user_id:
        raise CursorRejected("foreign")
    return Cursor(user_id, parts[1], parts[2], parts[3] if len(parts) == 4 else "")
