"""Which commits wake the relay: one hint per `every_s` however many commits, the first
at once, and only hints that committed count (a clock of the test's own: no timing)."""

from __future__ import annotations

import pytest

from gateway.services import outbox
from gateway.services.outbox import WakeHints


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(outbox.time, "monotonic", lambda: now[0])
    return now


def test_a_burst_sends_one_hint_per_period(clock: list[float]) -> None:
    hints, sent = WakeHints(every_s=0.005), 0
    for _ in range(40):  # back-to-back commits within one period
        if hints.due():
            hints.sent()
            sent += 1
        clock[0] += 0.0001
    assert sent == 1
    clock[0] += 0.005
    assert hints.due()  # the next period's first commit hints again


def test_the_first_commit_hints_at_once(clock: list[float]) -> None:
    assert WakeHints(every_s=60).due()


def test_a_hint_that_did_not_commit_leaves_the_next_one_due(clock: list[float]) -> None:
    hints = WakeHints(every_s=0.005)
    assert hints.due()  # asked, then rolled back: `sent` never called
    clock[0] += 0.0001
    assert hints.due()
