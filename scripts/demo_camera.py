"""The demo's camera: a rendered video, a synthetic ONNX detector, a zone and its rule.

``camera_device`` renders the video (a person walks into the right half of the frame, which is
the restricted zone; a car passes along the top) and builds the detector with its model card,
then returns the gateway-config entry (a dict) of a ``camera`` device on that file. The demo and the
end-to-end tests both use it. ``fetch_snapshot`` downloads an incident's JPEG from the API the
way a user's browser would. Run alone: ``demo_camera.py prepare FOLDER`` prints the config
entry (JSON, which is YAML too); ``demo_camera.py fetch BASE_URL TOKEN OUT.jpg`` saves the
newest camera incident's JPEG.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "models" / "detectors"))

import synthetic_detector  # noqa: E402
from demo_support import http  # noqa: E402

from gridsense_edge.drivers.camera.snapshot import HIT_COLOUR, ZONE_COLOUR  # noqa: E402
from gridsense_edge.simulator.video import intrusion_scenario, write_video  # noqa: E402

CAMERA_TYPES = ("intrusion", "loitering")


DEMO_POINT = "gw-01.lobby-cam"  # on gw-01, grid g01-a (scripts/demo_data/registry.yaml)


def camera_device(folder: Path, point: str, *, realtime: bool = True, loop: bool = True,
                  layout: str = "yolo") -> dict[str, Any]:
    """Render the video and model into ``folder``; the entry for the config's ``devices``."""
    folder.mkdir(parents=True, exist_ok=True)
    video = folder / "lobby.avi"
    if not video.exists():
        write_video(video, intrusion_scenario(duration_s=8.0))
    model = folder / f"synthetic-{layout}-320.onnx"
    if not model.exists():
        synthetic_detector.write(model, layout, 320)
    return {
        "type": "camera", "point": point, "source": str(video), "resolution": [320, 240],
        "fps": 5, "realtime": realtime, "loop": loop, "report_interval_s": 5,
        "detector": {"model": str(model), "threads": 1},
        "zones": [{"name": "restricted", "polygon": [[160, 0], [320, 0], [320, 240],
                                                     [160, 240]]}],
        "rules": [{"type": "intrusion", "zone": "restricted", "clear_after_s": 2}],
    }


ZONE_BGR = ZONE_COLOUR  # the zone's outline in a snapshot
BOX_BGR = HIT_COLOUR  # the box of an object that raised the incident


def has_colour(area: Any, bgr: tuple[int, int, int], tolerance: int = 60) -> bool:
    """At least a few pixels of ``area`` (an image slice) are close to ``bgr``."""
    import numpy as np

    distance = np.abs(area.astype(np.int16) - np.array(bgr, dtype=np.int16)).sum(axis=2)
    return bool((distance < tolerance).sum() >= 5)


def drawn(jpeg: bytes) -> tuple[bool, bool]:
    """(zone drawn, box drawn) in a snapshot: what a person looking at it would check."""
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return False, False
    return has_colour(image, ZONE_BGR), has_colour(image, BOX_BGR)


def demo_cameras(gateway: str, work: Path) -> list[dict[str, Any]]:
    """The demo's cameras on ``gateway`` (one, on gw-01), looping in real time."""
    return [camera_device(work / "camera", DEMO_POINT)] if gateway == "gw-01" else []


def save_snapshots(base: str, token: str, work: Path) -> None:
    """Print the demo camera's incidents and save each one's JPEG as the API serves it."""
    for incident in camera_incidents(base, token, DEMO_POINT):
        try:
            jpeg = fetch_snapshot(base, token, incident["id"])
        except (OSError, RuntimeError) as exc:
            print(f"  snapshot of {incident['id']} not available: {exc}")
            continue
        path = work / "snapshots" / f"{incident['id']}.jpg"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(jpeg)
        zone, box = drawn(jpeg)
        print(f"  snapshot {incident['type']:<17} {DEMO_POINT:<22} {len(jpeg)} bytes, "
              f"zone drawn: {'yes' if zone else 'NO'}, box drawn: {'yes' if box else 'NO'} "
              f"-> {path}")
        print(f"           served at {base}/api/v1/incidents/{incident['id']}/snapshot")


def camera_incidents(base: str, token: str, point: str) -> list[dict[str, Any]]:
    body, _ = http(f"{base}/api/v1/incidents", token)
    return [i for i in json.loads(body) if i.get("point") == point]


def fetch_snapshot(base: str, token: str, incident_id: str) -> bytes:
    body, content_type = http(f"{base}/api/v1/incidents/{incident_id}/snapshot", token)
    if content_type != "image/jpeg":
        raise RuntimeError(f"snapshot of {incident_id} came as {content_type!r}")
    return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    prepare = verbs.add_parser("prepare", help="render video + model, print the config entry")
    prepare.add_argument("folder", type=Path)
    prepare.add_argument("--point", default=DEMO_POINT)
    fetch = verbs.add_parser("fetch", help="save the newest camera incident's snapshot")
    fetch.add_argument("base")
    fetch.add_argument("token")
    fetch.add_argument("output", type=Path)
    fetch.add_argument("--point", default=DEMO_POINT)
    args = parser.parse_args(argv)
    if args.verb == "prepare":
        print(json.dumps(camera_device(args.folder, args.point), indent=2))
        return 0
    incidents = camera_incidents(args.base, args.token, args.point)
    if not incidents:
        print(f"no incident from {args.point} yet", file=sys.stderr)
        return 1
    args.output.write_bytes(fetch_snapshot(args.base, args.token, incidents[0]["id"]))
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
