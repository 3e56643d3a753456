"""The fault suite's table, printed at the end of the run: for each fault, the events
committed, delivered and duplicated, and the time from the service's return to the first
event delivered after it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass
class Row:
    fault: str
    committed: int
    delivered: int
    duplicated: int
    recovery_s: float | None  # the service's return to the first event delivered after it
    note: str = ""


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
