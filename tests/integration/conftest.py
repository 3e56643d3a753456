"""Fixtures of the Web Push tests (helpers in tests/push_fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.push_fixtures import EMULATOR_PORT, PushEmulator


@pytest.fixture(scope="session")
def push_emulator() -> Iterator[PushEmulator]:
    """`web-push-testing` on the port the session settings admit."""
    emulator = PushEmulator(EMULATOR_PORT)
    emulator.start()
    yield emulator
    emulator.stop()
