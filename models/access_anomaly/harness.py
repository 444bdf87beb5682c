"""Access detectors judged on scripted abuse against a normal week: recall, delay, false alarms.

Every detector runs as the gateway runs it: the ``access_anomaly`` model through the edge's own
``AnomalyModel`` (the exported ONNX graph), ``repeated_denied`` and ``card_passback`` through the
edge's ``DoorStateMachine`` fed each decision in time order; ``card_two_places`` as the server
runs it, the access log's ``RecentGrants`` fed every grant (each building's door on a gateway of
its own, the server's default 60 s window). Training sees four simulated weeks;
the judged week is the following one of the same community, so the model knows these people.

Abuse families, each scripted ``--episodes`` times at seeded random moments of that week:

- ``night_probing``: someone tries six unknown cards at a building door between 01:00 and 04:00,
  a few seconds apart (all denied);
- ``night_valid_card``: a resident's own, valid card at their own door between 01:00 and 04:00,
  once (a lost or borrowed card used at night);
- ``passback_burst``: a resident's card granted three to five times at their door within 90 s
  at their usual hour (the card passed back to let others in);
- ``two_doors``: a resident's card at their door and, 20 to 50 s later, at a building at the
  other end of the estate (a cloned card). No gateway sees both doors: only the server can.

An episode is caught by a detector when it raises at a door of the episode within
``HORIZON_S`` of the episode's first swipe; the delay runs from that swipe. False alarms are
what each detector raises over the normal week alone, per door-week.

Usage: ``python models/access_anomaly/harness.py [--episodes 40] [--markdown | --json]``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from traffic import ROUTINES, residents, simulate
from train import export, fit

from gridsense_edge.drivers.osdp.anomaly import AnomalyModel
from gridsense_edge.drivers.osdp.decisions import Decision
from gridsense_edge.drivers.osdp.door import DoorPolicy, DoorStateMachine
from gridsense_protocol import AccessEvent, AccessResult
from gridsense_server.access_control.correlate import RecentGrants
from gridsense_server.config import CardCorrelationConfig

HORIZON_S = 600.0
RESIDENTS, BUILDINGS, SEED, UTC_OFFSET_H = 200, 6, 7, 8.0
TRAIN_START = datetime(2026, 10, 1, tzinfo=UTC)
WEEK_START = datetime(2026, 10, 29, tzinfo=UTC)
FAMILIES = ("night_probing", "night_valid_card", "passback_burst", "two_doors")
DETECTORS = ("access_anomaly", "repeated_denied", "card_passback", "card_two_places")


@dataclass(frozen=True, slots=True)
class Attempt:
    ts: datetime
    door: str
    credential: str | None  # None: a card the gateway does not know
    episode: int | None = None  # which scripted abuse it belongs to


@dataclass
class Judged:
    """Per detector: the alarms it raised, as (time, door)."""

    alarms: dict[str, list[tuple[datetime, str]]] = field(
        default_factory=lambda: {d: [] for d in DETECTORS})


def run_detectors(attempts: Iterable[Attempt], model: AnomalyModel) -> Judged:
    judged = Judged()
    doors: dict[str, DoorStateMachine] = {}
    server = CardCorrelationConfig()
    grants = RecentGrants(server.window_s, server.max_credentials)
    for seq, attempt in enumerate(sorted(attempts, key=lambda a: a.ts)):
        door = doors.setdefault(attempt.door,
                                DoorStateMachine(attempt.door, attempt.door, DoorPolicy()))
        granted = attempt.credential is not None
        decision = Decision(granted, None if granted else "unknown", attempt.credential,
                            None)
        step = door.decided(decision, "card", attempt.ts.timestamp())
        for incident in step.incidents:
            if incident.type in judged.alarms:
                judged.alarms[incident.type].append((attempt.ts, attempt.door))
        if granted and model.score(attempt.credential, attempt.door, attempt.ts).anomalous:
            judged.alarms["access_anomaly"].append((attempt.ts, attempt.door))
        if granted and grants.pair(_access_event(attempt, seq)) is not None:
            judged.alarms["card_two_places"].append((attempt.ts, attempt.door))
    return judged


def _access_event(attempt: Attempt, seq: int) -> AccessEvent:
    """The grant as the door's gateway reports it (one gateway per building: b1-main on gw-b1)."""
    gateway = f"gw-{attempt.door.split('-')[0]}"
    return AccessEvent(gateway=gateway, seq=seq + 1, ts=attempt.ts,
                       point=f"{gateway}.{attempt.door}", door=attempt.door,
                       result=AccessResult.GRANTED, method="card", credential=attempt.credential)


def _local(day: datetime, hour: float) -> datetime:
    return day + timedelta(hours=hour - UTC_OFFSET_H)


def scripted(family: str, episodes: int, seed: int) -> list[list[Attempt]]:
    """``episodes`` abuse episodes of one family in the judged week, seeded."""
    rng = random.Random(f"{family}/{seed}")
    people = residents(RESIDENTS, BUILDINGS, random.Random(SEED))
    doors = sorted({door for _, _, door in people})
    out: list[list[Attempt]] = []
    for n in range(episodes):
        day = WEEK_START + timedelta(days=rng.randrange(7))
        credential, routine, home = rng.choice(people)
        if family == "night_probing":
            start = _local(day, rng.uniform(1, 4))
            door = rng.choice(doors)
            out.append([Attempt(start + timedelta(seconds=i * rng.uniform(5, 15)), door, None, n)
                        for i in range(6)])
        elif family == "night_valid_card":
            out.append([Attempt(_local(day, rng.uniform(1, 4)), home, credential, n)])
        elif family == "passback_burst":
            mean, sd = rng.choice(ROUTINES[routine][1])
            start = _local(day, rng.gauss(mean, sd) % 24)
            times = sorted(rng.uniform(0, 90) for _ in range(rng.randint(3, 5)))
            out.append([Attempt(start + timedelta(seconds=t), home, credential, n)
                        for t in times])
        elif family == "two_doors":
            mean, sd = rng.choice(ROUTINES[routine][1])
            start = _local(day, rng.gauss(mean, sd) % 24)
            far = doors[(doors.index(home) + len(doors) // 2) % len(doors)]
            out.append([Attempt(start, home, credential, n),
                        Attempt(start + timedelta(seconds=rng.uniform(20, 50)), far, credential,
                                n)])
        else:
            raise ValueError(f"unknown family {family!r}")
    return out


def normal_week() -> list[Attempt]:
    return [Attempt(s.ts, s.door, s.credential)
            for s in simulate(7, RESIDENTS, BUILDINGS, SEED, UTC_OFFSET_H, WEEK_START)]


def _caught(episode: list[Attempt], alarms: list[tuple[datetime, str]]) -> float | None:
    """Seconds from the episode's first swipe to the first alarm at one of its doors."""
    start = episode[0].ts
    doors = {a.door for a in episode}
    delays = [(ts - start).total_seconds() for ts, door in alarms
              if door in doors and 0 <= (ts - start).total_seconds() <= HORIZON_S]
    return min(delays) if delays else None


def evaluate(episodes: int = 40, seed: int = 1,
             progress: Callable[[str], None] = lambda _: None) -> dict[str, object]:
    model_swipes = list(simulate(28, RESIDENTS, BUILDINGS, SEED, UTC_OFFSET_H, TRAIN_START))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "access_anomaly.onnx"
        export(fit(model_swipes, UTC_OFFSET_H), path)
        model = AnomalyModel(path)
        week = normal_week()
        progress(f"normal week: {len(week)} swipes")
        quiet = run_detectors(week, model)
        door_weeks = len({a.door for a in week})
        false_alarms = {d: {"count": len(quiet.alarms[d]),
                            "per_door_week": round(len(quiet.alarms[d]) / door_weeks, 2)}
                        for d in DETECTORS}
        families: dict[str, dict[str, object]] = {}
        for family in FAMILIES:
            # One episode at a time in the normal week, so episodes never mask each other.
            per_detector: dict[str, list[float | None]] = {d: [] for d in DETECTORS}
            for episode in scripted(family, episodes, seed):
                start, end = episode[0].ts, episode[-1].ts + timedelta(seconds=HORIZON_S)
                around = [a for a in week if start - timedelta(hours=1) <= a.ts <= end]
                judged = run_detectors(around + episode, model)
                for detector in DETECTORS:
                    per_detector[detector].append(_caught(episode, judged.alarms[detector]))
            families[family] = {d: _summary(v) for d, v in per_detector.items()}
            progress(f"{family}: {families[family]}")
    return {"episodes_per_family": episodes, "normal_swipes": len(week), "doors": door_weeks,
            "horizon_s": HORIZON_S, "false_alarms": false_alarms, "families": families}


def _summary(delays: list[float | None]) -> dict[str, object]:
    hits = [d for d in delays if d is not None]
    return {"recall": round(len(hits) / len(delays), 3),
            "median_delay_s": round(statistics.median(hits), 1) if hits else None}


def markdown(result: dict[str, object]) -> str:
    families = result["families"]
    assert isinstance(families, dict)
    rows = ["| abuse family | " + " | ".join(DETECTORS) + " |",
            "|---|" + "---|" * len(DETECTORS)]
    for family, by_detector in families.items():
        cells = []
        for detector in DETECTORS:
            cell = by_detector[detector]
            recall = f"{cell['recall']:.0%}"
            cells.append(recall if cell["median_delay_s"] is None
                         else f"{recall} · {cell['median_delay_s']:g} s")
        rows.append(f"| {family} | " + " | ".join(cells) + " |")
    false_alarms = result["false_alarms"]
    assert isinstance(false_alarms, dict)
    rows.append("| false alarms per door-week (normal week) | " + " | ".join(
        f"{false_alarms[d]['per_door_week']:g} ({false_alarms[d]['count']})"
        for d in DETECTORS) + " |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    out.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    result = evaluate(args.episodes, args.seed,
                      lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(result) if args.json else markdown(result) if args.markdown else result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
