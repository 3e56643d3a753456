"""The escalation ladder, climbed by `floorbell clock` (the rules: `domain.escalation`).

A pass finds the open waits whose next step is due at `now` (one query over the open
waits), then handles them in batches of one transaction each: the tickets are locked in
id order (an acknowledgement, a move or another clock waits its turn), read again with
their wait, and the steps `domain.escalation` finds due are recorded — in
`ticket_escalations` (one row per ticket and step) and in the wait's count of steps
climbed — in the same transaction that writes their events to the outbox. So:

- two clocks never send a step twice (the second reads the first's count once it holds
  the locks; the key of `ticket_escalations` refuses a second claim besides);
- a pass that dies before committing leaves its claims free, and a step that fell due
  while no clock ran is sent by the next pass, once;
- no step is sent after an answer committed: the answer is written under the same lock,
  and the clock reads the wait again once it holds it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

import asyncpg

from domain import escalation
from domain.escalation import LADDER_KEY, Due, Ladder
from domain.events import TicketEscalated
from domain.model import Ticket
from domain.tickets import with_final_card
from gateway.services import ticket_store
from gateway.services.outbox import UnitOfWork

log = logging.getLogger(__name__)
TICKET_ESCALATED = TicketEscalated.type
BATCH = 200  # tickets locked and escalated in one transaction

# Open waits whose next step is due by $2; $1: each step's minutes (1-based in SQL).
DUE = """
SELECT ticket_id FROM ticket_waits
WHERE answered_at IS NULL AND step < cardinality($1::int[])
  AND since + make_interval(mins => ($1::int[])[step + 1]) <= $2
ORDER BY ticket_id
"""
CLAIM = """
INSERT INTO ticket_escalations (ticket_id, step, audience, after_minutes, sent, escalated_at)
SELECT *, $6::timestamptz FROM unnest($1::bigint[], $2::int[], $3::text[], $4::int[], $5::bool[])
ON CONFLICT DO NOTHING RETURNING ticket_id, step
"""
CLIMBED = """
UPDATE ticket_waits w SET step = c.step, escalated_to = c.escalated_to,
                          escalated_at = c.escalated_at
FROM unnest($1::bigint[], $2::int[], $3::text[], $4::timestamptz[])
     AS c(ticket_id, step, escalated_to, escalated_at)
WHERE w.ticket_id = c.ticket_id
"""


async def read_ladder(db: asyncpg.Pool | asyncpg.Connection) -> Ladder:
    """The ladder the admins set (`escalation` in the settings), or the default."""
    stored = await db.fetchval("SELECT value FROM settings WHERE key = $1", LADDER_KEY)
    return escalation.ladder_of(stored)


async def climb(pool: asyncpg.Pool, now: datetime, ladder: Ladder | None = None) -> int:
    """One pass: send every step due at `now` (an aware time); how many were sent.
    `ladder`: the settings' one when not given."""
    if now.tzinfo is None:
        raise ValueError("the clock needs an aware datetime; naive times are ambiguous")
    if ladder is None:
        ladder = await read_ladder(pool)
    if not ladder:
        return 0
    minutes = [step.after_minutes for step in ladder]
    ids = [row["ticket_id"] for row in await pool.fetch(DUE, minutes, now)]
    sent = 0
    for start in range(0, len(ids), BATCH):
        sent += await _climb_batch(pool, ids[start : start + BATCH], ladder, now)
    return sent


async def _climb_batch(pool: asyncpg.Pool, ids: list[int], ladder: Ladder, now: datetime) -> int:
    async with UnitOfWork(pool) as uow:
        tickets = await ticket_store.load_many(uow.conn, ids, lock=True)
        due = {t.id: escalation.due_steps(ladder, t, now) for t in tickets}
        claimed = await _claim(uow.conn, due, now)
        sent, climbed = [], []
        for ticket in tickets:
            steps = [d for d in due[ticket.id] if (ticket.id, d.number) in claimed]
            if steps:
                events = escalation.climb(ticket, steps, now)
                uow.emit(*with_final_card(events, ticket))
                sent += [(ticket, d) for d in steps if d.send]
                climbed.append(ticket)
        await _record_climbed(uow.conn, climbed)
        await uow.commit()
    _log_sent(sent)
    return len(sent)


async def _claim(
    conn: asyncpg.Connection, due: dict[int, list[Due]], now: datetime
) -> set[tuple[int, int]]:
    """Record every due step, sent or passed over; the (ticket, step) pairs this pass got."""
    rows = [(ticket_id, d) for ticket_id, steps in due.items() for d in steps]
    if not rows:
        return set()
    claimed = await conn.fetch(
        CLAIM,
        [ticket_id for ticket_id, _ in rows], [d.number for _, d in rows],
        [str(d.step.to) for _, d in rows], [d.step.after_minutes for _, d in rows],
        [d.send for _, d in rows], now,
    )  # fmt: skip
    return {(row["ticket_id"], row["step"]) for row in claimed}


async def _record_climbed(conn: asyncpg.Connection, tickets: list[Ticket]) -> None:
    """How far each wait climbed, and the latest step sent (what the cards show)."""
    waits = [(t.id, t.wait) for t in tickets if t.wait is not None]
    if waits:
        await conn.execute(
            CLIMBED,
            [ticket_id for ticket_id, _ in waits], [w.step for _, w in waits],
            [w.escalated_to for _, w in waits], [w.escalated_at for _, w in waits],
        )  # fmt: skip


def _log_sent(sent: Iterable[tuple[Ticket, Due]]) -> None:
    for ticket, due in sent:
        log.info(
            "ticket_escalated: %s (ticket %s), step %d to %s after %d min",
            ticket.ticket_id, ticket.id, due.number, due.step.to, due.step.after_minutes,
        )  # fmt: skip
