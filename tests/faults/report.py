"""The fault suite's table, printed at the end of the run: for each fault, the events
committed, delivered and duplicated, and the time from the service's return to the first
event delivered after it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class Arrival:
    """One event seen by a watcher: what tells it apart, and when (monotonic) it came."""

    key: str
    at: float


@dataclass
class Row:
    fault: str
    committed: int
    delivered: int
    duplicated: int
    recovery_s: float | None  # the service's return to the first event delivered after it
    note: str = ""

    @classmethod
    def of(cls, fault: str, committed: Iterable[str], arrivals: list[Arrival],
           back_at: float | None, note: str = "") -> Row:  # fmt: skip
        """The row of a fault from what was committed and what arrived: `back_at` is when
        the service returned (monotonic), or None."""
        wanted = set(committed)
        seen = Counter(arrival.key for arrival in arrivals)
        after = [arrival.at - back_at for arrival in arrivals if back_at and arrival.at >= back_at]
        duplicated = sum(n - 1 for n in seen.values())
        recovery = min(after) if after else None
        return cls(fault, len(wanted), len(wanted & set(seen)), duplicated, recovery, note)

    @property
    def exactly_once(self) -> bool:
        return self.delivered == self.committed and self.duplicated == 0


@dataclass
class FaultReport:
    rows: list[Row] = field(default_factory=list)
    _shared: ClassVar[FaultReport | None] = None

    @classmethod
    def shared(cls) -> FaultReport:
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def lines(self) -> list[str]:
        if not self.rows:
            return []
        head = f"{'fault':<44} {'committed':>9} {'delivered':>9} {'duplicated':>10} {'recovery':>9}"
        out = ["fault table (events committed, delivered once, duplicated)", head]
        for row in self.rows:
            recovery = "-" if row.recovery_s is None else f"{row.recovery_s:.2f} s"
            line = f"{row.fault:<44} {row.committed:>9} {row.delivered:>9} {row.duplicated:>10}"
            out.append(f"{line} {recovery:>9}" + (f"  {row.note}" if row.note else ""))
        return out
