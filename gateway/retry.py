"""Capped exponential backoff with full jitter: retries are data, in one place."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    base_s: float = 0.2
    cap_s: float = 5.0
    attempt: int = 0

    def next_delay(self) -> float:
        delay = min(self.cap_s, self.base_s * 2**self.attempt)
        self.attempt += 1
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        self.attempt = 0
