"""Snapshots at the server: stored durably under their event id whichever of incident and JPEG
arrives first, served at GET /api/v1/incidents/{id}/snapshot to those who see the incident,
numbered (no sequence gap), capped with the oldest evicted, and garbage refused."""

from __future__ import annotations

import cv2
import httpx
import numpy as np
from server_helpers import EdgePublisher, async_wait_until

from gridsense_protocol import Kind, tag_snapshot, topic_for
from gridsense_server.app import ServerApp
from gridsense_server.counters import Counters
from gridsense_server.workorders.snapshots import SnapshotStore

PASSWORDS = {"worker-g01": "demo", "worker-g02": "demo2", "control": "ctl"}


def _jpeg(seed: int, size: int = 64) -> bytes:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


async def _token(http: httpx.AsyncClient, username: str) -> str:
    response = await http.post("/api/v1/auth/token",
                               json={"username": username, "password": PASSWORDS[username]})
    return str(response.json()["access_token"])


async def test_a_snapshot_before_its_incident_is_served_once_the_incident_exists(
    running_server: ServerApp, edge: EdgePublisher
) -> None:
    app = running_server
    point = "gw-01.boiler"
    incident = edge.incident(point).model_copy(update={"has_snapshot": True})
    jpeg = tag_snapshot(_jpeg(1), incident.seq + 1)
    edge.seq += 1
    # The JPEG first, then its incident (they are two messages; either order happens).
    edge.publish_raw(topic_for(edge.gateway, Kind.SNAPSHOT, incident.id), jpeg)
    await async_wait_until(lambda: app.counters.snapshot().get("snapshots.stored"), 20,
                           "the snapshot stored")
    edge.publish(incident)
    assert app.http_url is not None
    async with httpx.AsyncClient(base_url=app.http_url, trust_env=False, timeout=30) as http:
        worker = await _token(http, "worker-g01")
        headers = {"Authorization": f"Bearer {worker}"}

        async def listed() -> list[dict]:
            reply = await http.get("/api/v1/incidents", headers=headers)
            return [i for i in reply.json() if i["point"] == point]

        (row,) = await async_wait_until(listed, 20, "the incident")
        reply = await http.get(f"/api/v1/incidents/{row['id']}/snapshot", headers=headers)
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "image/jpeg"
        assert reply.content == jpeg
        assert cv2.imdecode(np.frombuffer(reply.content, np.uint8), cv2.IMREAD_COLOR) is not None
        other = await _token(http, "worker-g02")
        hidden = await http.get(f"/api/v1/incidents/{row['id']}/snapshot",
                                headers={"Authorization": f"Bearer {other}"})
        assert hidden.status_code == 404
        anonymous = await http.get(f"/api/v1/incidents/{row['id']}/snapshot")
        assert anonymous.status_code == 401

        async def gap_free() -> bool:
            control = await _token(http, "control")
            views = (await http.get("/api/v1/gateways",
                                    headers={"Authorization": f"Bearer {control}"})).json()
            view = [g for g in views if g["id"] == edge.gateway]
            return bool(view) and view[0]["seq_last"] == incident.seq + 1 and \
                view[0]["seq_gaps"] == 0

        await async_wait_until(gap_free, 20, "both seqs recorded, no gap")


async def test_an_incident_without_a_snapshot_is_404_and_garbage_is_refused(
    running_server: ServerApp, edge: EdgePublisher
) -> None:
    app = running_server
    incident = edge.publish(edge.incident("gw-01.boiler"))
    edge.publish_raw(topic_for(edge.gateway, Kind.SNAPSHOT, incident.id), b"GIF89a not a jpeg")
    await async_wait_until(
        lambda: app.counters.snapshot().get("ingest.invalid.not_jpeg")
        or any(k.startswith("ingest.invalid") for k in app.counters.snapshot()), 20,
        "the bad snapshot counted")
    assert app.http_url is not None
    async with httpx.AsyncClient(base_url=app.http_url, trust_env=False, timeout=30) as http:
        control = await _token(http, "control")
        headers = {"Authorization": f"Bearer {control}"}

        async def listed() -> list[dict]:
            return (await http.get("/api/v1/incidents", headers=headers)).json()

        (row,) = await async_wait_until(listed, 20, "the incident")
        reply = await http.get(f"/api/v1/incidents/{row['id']}/snapshot", headers=headers)
        assert reply.status_code == 404
    assert not app.counters.snapshot().get("snapshots.stored")


def test_the_store_is_capped_and_evicts_the_oldest_first(tmp_path) -> None:  # type: ignore[no-untyped-def]
    counters = Counters()
    jpegs = [_jpeg(7, 96)] * 6  # one size, so the cap holds exactly three
    cap = sum(len(j) for j in jpegs[:3]) + 10  # room for three
    store = SnapshotStore(tmp_path, cap, counters)
    ids = [f"01J0000000000000000000000{i}" for i in range(6)]
    for event_id, jpeg in zip(ids, jpegs, strict=True):
        store.save("gw-01", event_id, jpeg)
        assert store.bytes <= cap
    kept = [i for i in ids if store.find("gw-01", [i]) is not None]
    assert kept == ids[3:]
    assert counters.snapshot()["snapshots.evicted"] == 3
    store.save("gw-01", ids[5], jpegs[5])  # a redelivery: same file, nothing more evicted
    assert counters.snapshot()["snapshots.evicted"] == 3
    reopened = SnapshotStore(tmp_path, cap, Counters())  # the accounting survives a restart
    assert reopened.bytes == store.bytes
    assert store.find("gw-01", ["../../etc/passwd", ids[4]]) == tmp_path / "gw-01" / f"{ids[4]}.jpg"
