"""A camera end to end, every part real: a rendered video file is decoded by the edge agent's
camera (OpenCV), motion-gated, run through a real onnxruntime detector, tracked, and a person
entering the restricted zone raises an intrusion incident whose JPEG follows it through a real
Mosquitto to the server, which serves it at GET /api/v1/incidents/{id}/snapshot."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml

from gridsense_devtools.camera import (
    BOX_BGR,
    ZONE_BGR,
    camera_device,
    camera_incidents,
    fetch_snapshot,
    has_colour,
)
from gridsense_devtools.http import login, try_http_json
from gridsense_devtools.processes import Procs, wait_until
from gridsense_devtools.server_process import start_server
from gridsense_devtools.services import InfluxDB, Mosquitto

POINT = "gw-cam.lobby"
POINTS = {POINT: ("gw-cam", "g01-a")}


def test_person_entering_the_zone_is_an_incident_with_its_snapshot(
    tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str], procs: Procs
) -> None:
    influx_server, db = influx
    device = camera_device(tmp_path / "camera", POINT, realtime=False, loop=False)
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump({
        "gateway": {"id": "gw-cam", "state_dir": str(tmp_path / "edge-state")},
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "keepalive_s": 10},
        "health": {"interval_s": 2},
        "devices": [device],
    }))
    _server, base, _config = start_server(procs, tmp_path, mosquitto.port, influx_server.url,
                                          db, POINTS)
    procs.start("edge", "gridsense-edge", "run", "--config", str(config))
    worker = login(base, "worker-g01")
    try:
        incidents = wait_until(lambda: camera_incidents(base, worker, POINT), 60,
                               "the camera's incident")
        jpeg = wait_until(lambda: _snapshot(base, worker, incidents[0]["id"]), 30,
                          "its snapshot")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{procs.logs()}") from None
    assert [i["type"] for i in incidents] == ["intrusion"]
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[:2] == (240, 320)
    assert has_colour(image[:, 157:163], ZONE_BGR), "the zone's outline is drawn"
    assert has_colour(image[:, 165:], BOX_BGR), "the person's box is drawn in the zone"
    # The other grid's worker sees neither the incident nor its picture.
    other = login(base, "worker-g02")
    assert _snapshot(base, other, incidents[0]["id"]) is None
    # The snapshot's seq was recorded like any message's: no gap in the gateway's sequence.
    control = login(base, "control")

    def no_gap() -> bool:
        gateways = try_http_json("GET", f"{base}/api/v1/gateways", control) or []
        view = [g for g in gateways if g["id"] == "gw-cam"]
        return bool(view) and view[0]["seq_last"] is not None and view[0]["seq_gaps"] == 0

    wait_until(no_gap, 20, "a gap-free sequence (the snapshot's seq recorded)")
    # Detection counts reached InfluxDB as the `detections` measurement, with the point's grid.
    # The first rows may all count zero (the incident takes a faster lane than the counts):
    # wait for the count of the person.
    def counted_person() -> list[dict]:
        rows = influx_server.points(
            'SELECT "value", "grid" FROM "detections" WHERE "point" = \'gw-cam.lobby\'', db)
        return rows if any(r["value"] >= 1 for r in rows) else []

    rows = wait_until(counted_person, 30, "a detection count of at least one in InfluxDB")
    assert {r["grid"] for r in rows} == {"g01-a"}
    # Each count is broken down by class beside the total: the person counted on its own.
    people = influx_server.points(
        'SELECT "value" FROM "detections" WHERE "point" = \'gw-cam.lobby\' '
        'AND "class" = \'person\'', db)
    assert people and max(r["value"] for r in people) >= 1


def _snapshot(base: str, token: str, incident_id: str) -> bytes | None:
    try:
        return fetch_snapshot(base, token, incident_id)
    except OSError:
        return None
