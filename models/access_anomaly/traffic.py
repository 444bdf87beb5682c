"""Simulated access traffic of a community: who swipes at which door at what hour.

Residents follow routines: most leave in the morning and come back in the evening through
their own building's door, some work nights, retirees come and go mid-morning and afternoon,
everybody now and then swipes at an odd hour. Deterministic for a seed, so a trained model and
its card's figures are reproducible. Rows look like the access log's CSV export
(``GET /api/v1/access-events?format=csv``): ts (ISO, UTC), credential, door, result.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

ROUTINES = {  # (share of residents, [(mean hour, sd hours), ...] local time)
    "commuter": (0.6, [(7.5, 0.7), (18.5, 1.2)]),
    "night_shift": (0.1, [(21.0, 0.8), (7.0, 0.8)]),
    "retiree": (0.3, [(9.5, 1.2), (15.5, 1.5)]),
}
ODD_SWIPE_SHARE = 0.02  # swipes at a uniformly random hour: people are not machines


@dataclass(frozen=True, slots=True)
class Swipe:
    ts: datetime
    credential: str
    door: str
    result: str = "granted"


def residents(count: int, buildings: int, rng: random.Random) -> list[tuple[str, str, str]]:
    """(credential id, routine, home door)."""
    names = list(ROUTINES)
    weights = [ROUTINES[n][0] for n in names]
    return [(f"res-{i:04d}", rng.choices(names, weights)[0], f"b{i % buildings + 1}-main")
            for i in range(count)]


def simulate(days: int = 28, count: int = 200, buildings: int = 6, seed: int = 7,
             utc_offset_h: float = 8.0, start: datetime | None = None) -> Iterator[Swipe]:
    start = start or datetime(2026, 10, 1, tzinfo=UTC)
    # The same seed is the same community (who lives where, with which routine); other
    # dates give other days of it, so a later period is a fair hold-out.
    people = residents(count, buildings, random.Random(seed))
    rng = random.Random(f"{seed}/{start.date().isoformat()}")
    for day in range(days):
        midnight_local = start + timedelta(days=day) - timedelta(hours=utc_offset_h)
        for credential, routine, door in people:
            if rng.random() < 0.1:
                continue  # stayed home
            for mean, sd in ROUTINES[routine][1]:
                hour = rng.gauss(mean, sd) % 24
                if rng.random() < ODD_SWIPE_SHARE:
                    hour = rng.uniform(0, 24)
                yield Swipe(midnight_local + timedelta(hours=hour), credential, door)
