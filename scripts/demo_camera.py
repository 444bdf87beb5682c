"""The demo's camera: the devtools camera scene on gw-01, and its snapshots saved after the run.

Run alone: ``demo_camera.py prepare FOLDER`` prints the config entry (JSON, which is YAML too);
``demo_camera.py fetch BASE_URL TOKEN OUT.jpg`` saves the newest camera incident's JPEG.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gridsense_devtools.camera import camera_device, camera_incidents, drawn, fetch_snapshot

DEMO_POINT = "gw-01.lobby-cam"  # on gw-01, grid g01-a (scripts/demo_data/registry.yaml)


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
