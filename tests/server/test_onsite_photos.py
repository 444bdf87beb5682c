"""Photos for resolving an incident, on a running server: multipart upload, the type sniffed
from the bytes, the EXIF location removed (or kept by setting), thumbnails, the count limit,
the same photo resent stored once, served only to those who see the incident, and shown in
the history by link."""

from __future__ import annotations

import io

import httpx
from api_client import Api
from conftest import ServerFactory
from PIL import Image
from PIL.ExifTags import GPS, IFD
from server_helpers import EdgePublisher, async_wait_until

from gridsense_server.app import ServerApp


def photo(colour: tuple[int, int, int], fmt: str = "JPEG") -> bytes:
    """A 1200×900 photo with a camera name and a GPS position in its EXIF."""
    exif = Image.Exif()
    exif[0x0110] = "GridPhone"
    exif.get_ifd(IFD.GPSInfo).update({GPS.GPSLatitudeRef: "N", GPS.GPSLatitude: (31.0, 14.0, 5.0),
                                      GPS.GPSLongitudeRef: "E",
                                      GPS.GPSLongitude: (121.0, 28.0, 9.0)})
    out = io.BytesIO()
    Image.new("RGB", (1200, 900), colour).save(out, fmt, exif=exif)
    return out.getvalue()


def gps_of(data: bytes) -> dict[int, object]:
    return dict(Image.open(io.BytesIO(data)).getexif().get_ifd(IFD.GPSInfo))


async def _incident(server: ServerApp, edge: EdgePublisher, api: Api) -> str:
    edge.publish(edge.incident("gw-01.boiler"))
    await async_wait_until(lambda: server.counters.get("incidents.opened") == 1)
    [item] = await api.json("control", "/api/v1/incidents")
    return str(item["id"])


async def test_upload_strip_serve_and_resolve_with_photos(
        start_server: ServerFactory, edge: EdgePublisher) -> None:
    server = await start_server(extra_yaml="photos: {max_per_incident: 2, thumbnail_px: 200}\n")
    assert server.http_url is not None
    async with httpx.AsyncClient(base_url=server.http_url, trust_env=False, timeout=30) as http:
        api = Api(http)
        iid = await _incident(server, edge, api)
        uploads = f"/api/v1/incidents/{iid}/photos"
        red = photo((200, 30, 30))
        assert gps_of(red)  # the test photo does carry a position

        sent = await api.as_("worker-g01", "POST", uploads,
                             files=[("file", ("IMG_0001.jpg", red, "image/jpeg"))])
        assert sent.status_code == 201, sent.text
        [kept] = sent.json()
        assert (kept["media_type"], kept["width"], kept["height"]) == ("image/jpeg", 1200, 900)
        assert kept["location_kept"] is False
        full = await api.as_("worker-g01", "GET", kept["url"])
        assert full.headers["content-type"] == "image/jpeg"
        assert gps_of(full.content) == {}
        assert Image.open(io.BytesIO(full.content)).getexif()[0x0110] == "GridPhone"
        thumb = await api.as_("worker-g01", "GET", kept["thumbnail_url"])
        assert Image.open(io.BytesIO(thumb.content)).size == (200, 150)

        resent = await api.as_("worker-g01", "POST", uploads,
                               files=[("file", ("again.jpg", red, "image/jpeg"))])
        assert [p["id"] for p in resent.json()] == [kept["id"]]  # stored once
        assert server.counters.get("api.photos_stored") == 1

        # The client's word on the type counts for nothing: the bytes decide.
        text = await api.as_("worker-g01", "POST", uploads,
                             files=[("file", ("x.jpg", b"not an image at all", "image/jpeg"))])
        assert text.status_code == 415 and "只接受" in text.json()["detail"]
        fake = await api.as_("worker-g01", "POST", uploads,
                             files=[("file", ("x.png", b"\x89PNG\r\n\x1a\n" + b"0" * 64,
                                              "image/png"))])
        assert fake.status_code == 422 and "照片无法读取" in fake.json()["detail"]

        png = await api.as_("worker-g01", "POST", uploads,
                            files=[("file", ("b.png", photo((30, 30, 200), "PNG"), "image/png"))])
        assert png.json()[0]["media_type"] == "image/png"
        third = await api.as_("worker-g01", "POST", uploads,
                              files=[("file", ("c.webp", photo((30, 200, 30), "WEBP"),
                                               "image/webp"))])
        assert third.status_code == 409 and "上限" in third.json()["detail"]

        assert (await api.as_("worker-g02", "GET", kept["url"])).status_code == 404
        assert (await api.as_("worker-g02", "POST", uploads, files=[
            ("file", ("x.jpg", photo((1, 2, 3)), "image/jpeg"))])).status_code == 404
        listed = await api.json("control", uploads)
        assert [p["uploaded_by"] for p in listed] == ["worker-g01", "worker-g01"]

        await api.act("worker-g01", iid, "accept")
        wrong = await api.act("worker-g01", iid, "resolve", photos=["ph" + "0" * 24])
        assert wrong.status_code == 400 and "were not uploaded" in wrong.json()["detail"]
        ids = [kept["id"], png.json()[0]["id"]]
        done = await api.act("worker-g01", iid, "resolve", note="阀门已更换", photos=ids)
        assert done.status_code == 200, done.text
        detail = await api.json("control", f"/api/v1/incidents/{iid}")
        [resolve] = [h for h in detail["history"] if h["action"] == "resolve"]
        assert resolve["photos"] == ids
        assert [link["thumbnail_url"] for link in resolve["photo_links"]] == [
            f"/api/v1/incidents/{iid}/photos/{p}/thumbnail" for p in ids]


async def test_location_kept_by_setting(start_server: ServerFactory,
                                        edge: EdgePublisher) -> None:
    server = await start_server(extra_yaml="photos: {keep_location: true}\n")
    assert server.http_url is not None
    async with httpx.AsyncClient(base_url=server.http_url, trust_env=False, timeout=30) as http:
        api = Api(http)
        iid = await _incident(server, edge, api)
        original = photo((9, 9, 9))
        sent = await api.as_("worker-g01", "POST", f"/api/v1/incidents/{iid}/photos",
                             files=[("file", ("a.jpg", original, "image/jpeg"))])
        [kept] = sent.json()
        assert kept["location_kept"] is True
        full = await api.as_("control", "GET", kept["url"])
        assert full.content == original
        assert gps_of(full.content)[GPS.GPSLatitudeRef] == "N"
