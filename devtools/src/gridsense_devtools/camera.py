"""A camera scene for the demo and the tests, and what a person checks in its snapshots.

``camera_device`` renders the video (a person walks into the right half of the frame, the
restricted zone; a car passes along the top), builds the synthetic detector with its card, and
returns the gateway-config entry of a ``camera`` device on that file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gridsense_devtools.detectors.synthetic import model_in
from gridsense_devtools.http import http
from gridsense_edge.drivers.camera.snapshot import HIT_COLOUR, ZONE_COLOUR
from gridsense_edge.simulator.video import intrusion_scenario, write_video

ZONE_BGR = ZONE_COLOUR  # the zone's outline in a snapshot
BOX_BGR = HIT_COLOUR  # the box of an object that raised the incident


def camera_device(folder: Path, point: str, *, realtime: bool = True, loop: bool = True,
                  layout: str = "yolo") -> dict[str, Any]:
    """Render the video and model into ``folder``; the entry for the config's ``devices``."""
    folder.mkdir(parents=True, exist_ok=True)
    video = folder / "lobby.avi"
    if not video.exists():
        write_video(video, intrusion_scenario(duration_s=8.0))
    model = model_in(folder, layout)
    return {
        "type": "camera", "point": point, "source": str(video), "resolution": [320, 240],
        "fps": 5, "realtime": realtime, "loop": loop, "report_interval_s": 5,
        "detector": {"model": str(model), "threads": 1},
        "zones": [{"name": "restricted", "polygon": [[160, 0], [320, 0], [320, 240],
                                                     [160, 240]]}],
        "rules": [{"type": "intrusion", "zone": "restricted", "clear_after_s": 2}],
    }


def has_colour(area: Any, bgr: tuple[int, int, int], tolerance: int = 60) -> bool:
    """At least a few pixels of ``area`` (an image slice) are close to ``bgr``."""
    distance = np.abs(area.astype(np.int16) - np.array(bgr, dtype=np.int16)).sum(axis=2)
    return bool((distance < tolerance).sum() >= 5)


def drawn(jpeg: bytes) -> tuple[bool, bool]:
    """(zone drawn, box drawn) in a snapshot: what a person looking at it would check."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return False, False
    return has_colour(image, ZONE_BGR), has_colour(image, BOX_BGR)


def camera_incidents(base: str, token: str, point: str) -> list[dict[str, Any]]:
    body, _ = http(f"{base}/api/v1/incidents?open=false", token)  # closed ones too
    return [i for i in json.loads(body) if i.get("point") == point]


def fetch_snapshot(base: str, token: str, incident_id: str) -> bytes:
    """An incident's JPEG, downloaded the way a user's browser would."""
    body, content_type = http(f"{base}/api/v1/incidents/{incident_id}/snapshot", token)
    if content_type != "image/jpeg":
        raise RuntimeError(f"snapshot of {incident_id} came as {content_type!r}")
    return body
