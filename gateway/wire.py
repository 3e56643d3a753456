"""What a message looks like on a Redis stream and on the SSE wire: the one home of the
entry fields, the envelope, stream ids, the SSE id and the frame text.

A stream entry holds the event type (`t`) and its envelope JSON (`e`); an entry of the
live stream also names its user (`u`) and its id in that user's own stream (`i`). Lua
scripts receive these names as arguments rather than spelling them.

The envelope is what a client receives, minus `id`, which depends on the connection
and is added when the frame is written: `{"id", "type", "ts", "actor_id", "data",
"url"?, "notification_id"?}`. A frame is `id:`, `event:` and one `data:` line.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

# Stream entry fields.
TYPE, ENVELOPE, USER, USER_ENTRY = "t", "e", "u", "i"
TYPE_B, ENVELOPE_B, USER_B, USER_ENTRY_B = (
    name.encode() for name in (TYPE, ENVELOPE, USER, USER_ENTRY)
)

START = "0-0"  # before every entry of a stream
_STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}", re.ASCII)
HEARTBEAT_FRAME = ": heartbeat\n\n"


def now_ms() -> int:
    return int(time.time() * 1000)


def iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{now_ms() % 1000:03d}Z"


def envelope(
    event_type: str,
    data: dict[str, Any],
    actor_id: int | None = None,
    ts: str | None = None,
    **extra: Any,
) -> str:
    """The stored form of what a client receives; the gateway adds `id` when it sends."""
    body: dict[str, Any] = {
        "type": event_type,
        "ts": ts or iso_now(),
        "actor_id": actor_id,
        "data": data,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str)


def push_entry(
    notification_id: int, user_id: int, event_type: str, critical: bool, pushable: bool
) -> str:
    """What the push stream holds for a notification: enough to decide its push."""
    return json.dumps({"notification_id": notification_id, "user_id": user_id,
                       "type": event_type, "critical": critical, "pushable": pushable})  # fmt: skip


def presence_template() -> tuple[str, str, str]:
    """A `presence` envelope of now in three parts, to be joined around a user id and an
    online flag (`true`/`false`): how a Lua script announces presence in this format."""
    user_mark, online_mark = "\x01", "\x02"
    body = envelope("presence", {"user_id": user_mark, "online": online_mark})
    head, rest = body.split(json.dumps(user_mark), 1)
    middle, tail = rest.split(json.dumps(online_mark), 1)
    return head, middle, tail


def parse_stream_id(value: str) -> tuple[int, int] | None:
    """A stream id (`<ms>-<seq>`, ASCII digits) as a comparable tuple, or None."""
    if not _STREAM_ID.fullmatch(value):
        return None
    ms, seq = value.split("-")
    return int(ms), int(seq)


def id_key(stream_id: str | bytes) -> tuple[int, int]:
    """A stream id Redis gave us, as a comparable tuple."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, seq = text.split("-")
    return int(ms), int(seq)


def sse_id(user_id: int, user_pos: str, board_pos: str, epoch: str) -> str:
    """The SSE id: a position in the user's own stream and in the board stream, in the
    history of generation `epoch`."""
    return f"{user_id}:{user_pos}:{board_pos}:{epoch}"


def frame(frame_id: str, event_type: str, tail: str) -> str:
    """An SSE frame. `tail` is the envelope JSON minus its leading `{` (JSON holds no raw
    line break); `event_type` must already be free of CR and LF (`event_type_of`)."""
    return f'id: {frame_id}\nevent: {event_type}\ndata: {{"id":"{frame_id}",{tail}\n\n'


def retry_frame(retry_ms: int) -> str:
    return f"retry: {retry_ms}\n\n"


def event_type_of(fields: dict[bytes, bytes]) -> str:
    """The entry's type, safe for an `event:` line."""
    return fields[TYPE_B].decode().replace("\r", "").replace("\n", "")
