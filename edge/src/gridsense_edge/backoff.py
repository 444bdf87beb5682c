"""Capped exponential backoff with jitter: the one formula every reconnect and retry uses."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before retry number ``attempt`` (0 for the first retry).

    Exponential up to ``cap``, then "equal jitter": a uniform draw in [d/2, d], so peers that
    failed together (every gateway after a broker restart) do not retry in lockstep, while the
    delay never collapses to zero.
    """
    delay = min(cap, base * (2 ** min(attempt, 32)))
    return delay * (0.5 + 0.5 * (rng or random).random())
