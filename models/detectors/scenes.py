"""Seeded scenes for each camera rule: one where its event happens, one near miss that must stay
quiet, and what the ground truth says about when the event happened.

Scenes are drawn by ``gridsense_edge.simulator.video`` (320x240, 10 frames/s; person = red
block, bicycle = blue, car = green, on a grey textured floor) so the synthetic detector finds
them. The zone of every rule is the right half of the frame (an object is in it when its
bottom-centre is). Each scene may carry a distractor of another class crossing the top band
and an infrared switch (the whole frame brightens or darkens for half a second).

The *oracle* of a rule reads the figures' true boxes frame by frame and says when the rule's
condition first held (the person's feet crossed into the zone, the car had stood still in it
``for_s``...): the delay of a detection runs from there. A near miss never meets it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gridsense_edge.simulator.video import Box, Figure, VideoScenario

W, H, FPS = 320, 240, 10.0
ZONE_X = 160.0  # the zone: x >= 160 (the right half)
ZONE = [(ZONE_X, 0.0), (float(W), 0.0), (float(W), float(H)), (ZONE_X, float(H))]
PERSON = (24.0, 48.0)  # width, height of an upright person
BIKE = (50.0, 40.0)
CAR = (60.0, 30.0)

# The rules as judged (short times so scenes stay seconds long; a site uses longer ones).
RULES: dict[str, dict[str, Any]] = {
    "intrusion": {"type": "intrusion", "zone": "zone"},
    "ebike_in_elevator": {"type": "ebike_in_elevator", "zone": "zone"},
    "loitering": {"type": "loitering", "zone": "zone", "dwell_s": 3.0},
    "crowd": {"type": "crowd", "zone": "zone", "min_count": 3, "for_s": 1.0},
    # Longer than a track outlives its object (a car that drove out of the frame is dropped
    # after max_misses + 1 re-checks, ~4 s at 10 frames/s): the gateway's default is 120 s.
    "fire_lane_blocked": {"type": "fire_lane_blocked", "zone": "zone", "for_s": 8.0},
    "person_down": {"type": "person_down", "zone": "zone", "for_s": 1.0},
}


@dataclass(frozen=True)
class Scene:
    rule: str
    positive: bool  # the event happens (else: a near miss)
    kind: str  # which near miss, or "event"
    video: VideoScenario
    target: tuple[Figure, ...]  # the figures the oracle watches


def _box(x: float, y_bottom: float, size: tuple[float, float]) -> Box:
    w, h = size
    return (x, y_bottom - h, x + w, y_bottom)


def _walk(label: str, size: tuple[float, float], x0: float, x1: float, y_bottom: float,
          t0: float, t1: float, until: float) -> Figure:
    frames = [(t0, _box(x0, y_bottom, size)), (t1, _box(x1, y_bottom, size))]
    if until > t1:
        frames.append((until, _box(x1, y_bottom, size)))
    return Figure(label, frames)


def _into_zone(rng: random.Random, label: str, size: tuple[float, float], until: float,
               y_bottom: float | None = None) -> Figure:
    t0 = rng.uniform(0.5, 1.0)
    y = y_bottom if y_bottom is not None else rng.uniform(110.0, 230.0)
    return _walk(label, size, rng.uniform(5.0, 40.0), rng.uniform(180.0, W - size[0] - 5),
                 y, t0, t0 + rng.uniform(1.5, 2.5), until)


def _outside(rng: random.Random, label: str, size: tuple[float, float], until: float) -> Figure:
    """Walks in the left half, up to the zone's edge, and stays out."""
    t0 = rng.uniform(0.5, 1.0)
    edge = ZONE_X - size[0] / 2 - rng.uniform(12.0, 30.0)  # bottom-centre stays left of it
    return _walk(label, size, rng.uniform(5.0, 30.0), edge - size[0] / 2,
                 rng.uniform(110.0, 230.0), t0, t0 + rng.uniform(1.5, 2.5), until)


def _in_and_out(rng: random.Random, label: str, size: tuple[float, float], stay_s: float,
                until: float) -> Figure:
    """Steps just into the zone, stays ``stay_s``, goes back to the left half (in the zone
    for about ``stay_s`` plus a second)."""
    t0, y = rng.uniform(0.5, 1.0), rng.uniform(110.0, 230.0)
    start, end = _box(rng.uniform(5.0, 40.0), y, size), _box(rng.uniform(160.0, 175.0), y, size)
    t1 = t0 + rng.uniform(1.5, 2.5)
    back = t1 + stay_s + (t1 - t0)
    return Figure(label, [(t0, start), (t1, end), (t1 + stay_s, end), (back, start),
                          (max(until, back), start)])


# The distractor crossing the top band: a class the rule does not watch (never a person on
# its own: the synthetic detector would blend it with the scene's people).
DISTRACTOR = {"fire_lane_blocked": ("bicycle", BIKE), "ebike_in_elevator": ("car", CAR)}
Flash = tuple[float, float, int]


def _extras(rng: random.Random, rule: str, duration: float) -> tuple[list[Figure], list[Flash]]:
    """Half the scenes get a distractor, three in ten an infrared switch."""
    figures: list[Figure] = []
    if rng.random() < 0.5:
        label, size = DISTRACTOR.get(rule, ("car", CAR))
        t0 = rng.uniform(0.0, 1.0)
        figures.append(_walk(label, size, -10.0, W - size[0] + 10, rng.uniform(size[1] + 2, 50),
                             t0, t0 + rng.uniform(3.0, 5.0), 0.0))
    flashes = []
    if rng.random() < 0.3:
        start = rng.uniform(1.5, duration - 1.0)
        flashes.append((start, start + 0.5, rng.choice((-45, 45))))
    return figures, flashes


Maker = Callable[[random.Random], tuple[str, list[Figure], float]]


def _person_group(rng: random.Random, count: int, until: float) -> list[Figure]:
    """People 94 px apart vertically (the synthetic detector blends one class within ~44 px)."""
    t0 = rng.uniform(0.5, 0.9)
    return [_walk("person", PERSON, rng.uniform(5.0, 30.0), rng.uniform(190.0, 280.0),
                  48.0 + 94.0 * i + rng.uniform(0.0, 4.0), t0 + rng.uniform(0.0, 0.3),
                  t0 + rng.uniform(1.4, 1.8), until) for i in range(count)]


def _fall(rng: random.Random, until: float) -> Figure:
    walk = _into_zone(rng, "person", PERSON, 0.0, rng.uniform(150.0, 220.0))
    (t0, start), (t1, end) = walk.keyframes[:2]
    fall_at = t1 + rng.uniform(0.8, 1.5)
    x1, _, _, y2 = end
    lying = (min(x1 - 18.0, W - 70.0), y2 - 20.0, min(x1 - 18.0, W - 70.0) + 60.0, y2)
    return Figure("person", [(t0, start), (t1, end), (fall_at, end),
                             (fall_at + 0.5, lying), (until, lying)])


def _car_stops(rng: random.Random, until: float, in_zone: bool) -> Figure:
    t0 = rng.uniform(0.3, 0.8)
    x1 = rng.uniform(185.0, W - CAR[0] - 5) if in_zone else rng.uniform(40.0, 80.0)
    return _walk("car", CAR, -5.0 if in_zone else -40.0, x1, rng.uniform(120.0, 230.0), t0,
                 t0 + rng.uniform(1.2, 2.0), until)


POSITIVE: dict[str, Maker] = {
    "intrusion": lambda r: ("event", [_into_zone(r, "person", PERSON, 6.0)], 6.0),
    "ebike_in_elevator": lambda r: ("event", [_into_zone(r, "bicycle", BIKE, 6.0)], 6.0),
    "loitering": lambda r: ("event", [_into_zone(r, "person", PERSON, 8.0)], 8.0),
    "crowd": lambda r: ("event", _person_group(r, 3, 6.0), 6.0),
    "fire_lane_blocked": lambda r: ("event", [_car_stops(r, 13.0, True)], 13.0),
    "person_down": lambda r: ("event", [_fall(r, 7.0)], 7.0),
}

NEAR_MISSES: dict[str, list[Maker]] = {
    "intrusion": [lambda r: ("up_to_the_edge", [_outside(r, "person", PERSON, 6.0)], 6.0),
                  lambda r: ("a_car_enters", [_into_zone(r, "car", CAR, 6.0)], 6.0)],
    "ebike_in_elevator": [
        lambda r: ("a_person_enters", [_into_zone(r, "person", PERSON, 6.0)], 6.0),
        lambda r: ("bike_stays_out", [_outside(r, "bicycle", BIKE, 6.0)], 6.0)],
    "loitering": [lambda r: ("leaves_in_time",
                             [_in_and_out(r, "person", PERSON, r.uniform(0.5, 1.5), 8.0)], 8.0)],
    "crowd": [lambda r: ("two_people", _person_group(r, 2, 6.0), 6.0)],
    "fire_lane_blocked": [
        lambda r: ("drives_through", [_walk("car", CAR, -5.0, W + 5.0, r.uniform(120, 230),
                                            0.5, r.uniform(4.0, 6.0), 0.0)], 13.0),
        lambda r: ("parks_outside", [_car_stops(r, 13.0, False)], 13.0)],
    "person_down": [lambda r: ("stands", [_into_zone(r, "person", PERSON, 7.0, 200.0)], 7.0)],
}


def scenes(rule: str, count: int, seed: int) -> list[Scene]:
    """``count`` event scenes and ``count`` near misses (cycling through the kinds)."""
    out: list[Scene] = []
    for n in range(2 * count):
        rng = random.Random(f"{rule}/{seed}/{n}")
        positive = n % 2 == 0
        makers = [POSITIVE[rule]] if positive else NEAR_MISSES[rule]
        kind, target, duration = makers[(n // 2) % len(makers)](rng)
        extra, flashes = _extras(rng, rule, duration)
        video = VideoScenario(width=W, height=H, fps=FPS, duration_s=duration,
                              figures=[*target, *extra], seed=rng.randrange(1 << 30),
                              flashes=flashes)
        out.append(Scene(rule, positive, kind, video, tuple(target)))
    return out


def _in_zone(box: Box | None) -> bool:
    return box is not None and (box[0] + box[2]) / 2 >= ZONE_X


def _lying(box: Box) -> bool:
    return box[2] - box[0] >= 1.2 * (box[3] - box[1])


def oracle(scene: Scene) -> float | None:
    """The frame time at which the ground truth first meets the rule's condition."""
    config = RULES[scene.rule]
    since: dict[int, float] = {}  # per figure (or the group, key -1): since when it holds
    for i in range(scene.video.frames):
        t = i / FPS
        boxes = [f.box_at(t) for f in scene.target]
        labels = [f.label for f in scene.target]
        if scene.rule in ("intrusion", "ebike_in_elevator"):
            want = "person" if scene.rule == "intrusion" else "bicycle"
            if any(_in_zone(b) and label == want for b, label in zip(boxes, labels, strict=True)):
                return t
            continue
        if scene.rule == "crowd":
            held = sum(_in_zone(b) and label == "person"
                       for b, label in zip(boxes, labels, strict=True)) >= config["min_count"]
            holds = {-1: held}
            need = float(config["for_s"])
        else:
            holds = {}
            for k, (box, label) in enumerate(zip(boxes, labels, strict=True)):
                if scene.rule == "loitering":
                    holds[k] = label == "person" and _in_zone(box)
                elif scene.rule == "fire_lane_blocked":
                    before = scene.target[k].box_at(t - 1 / FPS)
                    holds[k] = label == "car" and _in_zone(box) and box == before
                else:  # person_down
                    holds[k] = label == "person" and box is not None and _lying(box)
            need = float(config.get("dwell_s", config.get("for_s", 0.0)))
        for k, held in holds.items():
            if not held:
                since.pop(k, None)
                continue
            since.setdefault(k, t if scene.rule != "fire_lane_blocked" else t - 1 / FPS)
            if t - since[k] >= need:
                return t
    return None
