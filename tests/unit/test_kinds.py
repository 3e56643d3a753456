"""The kinds of notification: the README's table says what `domain/kinds.py` does."""

from __future__ import annotations

import re
from pathlib import Path

from domain.kinds import KINDS

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$")


def test_the_readme_table_lists_every_kind_as_it_is() -> None:
    section = README.read_text().split("## Who is told, and how", 1)[1].split("\n## ", 1)[0]
    rows = {m[1]: (m[3].strip(), m[4].strip()) for line in section.splitlines()
            if (m := ROW.match(line))}  # fmt: skip
    assert list(rows) == [kind.name for kind in KINDS]
    for kind in KINDS:
        critical, channels = rows[kind.name]
        assert (critical == "yes") is kind.critical, kind.name
        assert channels == ("push + in-app" if kind.push else "in-app only"), kind.name
