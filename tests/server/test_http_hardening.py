"""HTTP hardening against the real server (uvicorn on free ports, real broker, InfluxDB, SQLite):
body limits answered before the body is read, security headers on every response, /healthz
details only for control or on the local-only port, HTTPS from the deployment CA with a plain
listener that redirects and hands out the CA certificate, and trusted proxy headers."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import ServerFactory
from server_helpers import write_server_config

from gridsense_protocol.yamlconfig import ConfigError
from gridsense_server.api.hardening import CSP
from gridsense_server.app import ServerApp
from gridsense_server.config import load_server_config

FIFTY_MB = 50 * 2**20
PROXIED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}


def _client(url: str, **options: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, trust_env=False, timeout=30, **options)  # type: ignore[arg-type]


async def _token(http: httpx.AsyncClient, username: str, password: str) -> str:
    response = await http.post("/api/v1/auth/token",
                               json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _host_port(app: ServerApp) -> tuple[str, int]:
    assert app.http_url is not None
    parts = urlsplit(app.http_url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


async def _status_line(reader: asyncio.StreamReader) -> str:
    return (await reader.readline()).decode().strip()


async def test_a_declared_50_mb_body_is_refused_before_it_is_read(
        running_server: ServerApp) -> None:
    host, port = _host_port(running_server)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"POST /api/v1/auth/token HTTP/1.1\r\nHost: {host}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {FIFTY_MB}\r\n\r\n"
                 .encode() + b"{" + b" " * 1023)
    await writer.drain()
    # Only 1 KiB of the 50 MB was sent: an answer now means the rest was never waited for.
    assert await _status_line(reader) == "HTTP/1.1 413 Request Entity Too Large"
    writer.close()
    assert running_server.counters.get("http.refused.body_too_large") == 1


async def test_a_streamed_body_is_cut_off_at_the_limit(running_server: ServerApp) -> None:
    host, port = _host_port(running_server)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"POST /api/v1/auth/token HTTP/1.1\r\nHost: {host}\r\n"
                 "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
    answer = asyncio.create_task(_status_line(reader))
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"  # 16 KiB per chunk, no length declared
    sent = 0
    try:
        while not answer.done() and sent < FIFTY_MB:
            writer.write(chunk)
            await writer.drain()
            sent += 0x4000
    except ConnectionError:
        pass  # the server closed after answering: what we still sent went nowhere
    assert await answer == "HTTP/1.1 413 Request Entity Too Large"
    # The default limit is 64 KiB; what went beyond sat in socket buffers, never in the app.
    assert sent < 16 * 2**20
    writer.close()


async def test_the_credential_import_has_its_own_larger_limit(
        start_server: ServerFactory) -> None:
    app = await start_server(http={"max_import_mb": 1})
    assert app.http_url is not None
    async with _client(app.http_url) as http:
        control = await _token(http, "control", "ctl")
        headers = {"Authorization": f"Bearer {control}", "Content-Type": "text/csv"}
        path = "/api/v1/communities/ly/credentials/import"
        body = "id,holder,pin,doors\n" + "".join(f"r{i:06d},住户 {i:06d},{i:06d},*\n"
                                                  for i in range(2500))
        assert 64 * 1024 < len(body.encode()) < 2**20
        # Beyond the JSON limit, within the import's: read and answered by the route.
        taken = await http.post(path, content=body.encode(), headers=headers)
        assert taken.status_code == 200, taken.text
        assert taken.json()["imported"] == 2500
        refused = await http.post(path, content=b"x" * (2**20 + 1), headers=headers)
        assert refused.status_code == 413
        # Any other route keeps the small limit.
        assert (await http.post("/api/v1/silences", content=b"{" + b" " * 70_000,
                                headers=headers)).status_code == 413


async def test_every_response_carries_the_security_headers(running_server: ServerApp) -> None:
    assert running_server.http_url is not None
    async with _client(running_server.http_url) as http:
        for path in ("/", "/assets/none.js", "/api/v1/incidents", "/healthz", "/nope"):
            # No proxy is trusted by default: a client claiming HTTPS does not get HSTS.
            response = await http.get(path, headers=PROXIED)
            assert response.headers["content-security-policy"] == CSP, path
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert "camera=(self)" in response.headers["permissions-policy"]
            assert "strict-transport-security" not in response.headers  # plain HTTP: no HSTS
    assert "'unsafe-inline'" not in CSP and "'unsafe-eval'" not in CSP


async def test_healthz_details_need_control_or_the_local_port(running_server: ServerApp) -> None:
    assert running_server.http_url is not None and running_server.local_url is not None
    assert urlsplit(running_server.local_url).hostname == "127.0.0.1"
    async with _client(running_server.http_url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        worker = await _token(http, "worker-g01", "demo")
        as_worker = await http.get("/healthz", headers={"Authorization": f"Bearer {worker}"})
        assert as_worker.json() == {"status": "ok"}
        forged = await http.get("/healthz", headers={"Authorization": "Bearer x.y"})
        assert forged.json() == {"status": "ok"}
        control = await _token(http, "control", "ctl")
        as_control = (await http.get("/healthz",
                                     headers={"Authorization": f"Bearer {control}"})).json()
        assert as_control["status"] == "ok" and as_control["api.logins"] == 2
        local = (await http.get(f"{running_server.local_url}/healthz")).json()
        assert local["mqtt.connected"] is True and "reasons" in local


async def test_https_from_the_deployment_ca_with_a_redirecting_plain_port(
        start_server: ServerFactory, tmp_path: Path) -> None:
    app = await start_server(
        http={"tls": {"ca_dir": str(tmp_path / "ca"), "names": ["localhost", "127.0.0.1"]},
              "redirect_port": 0},
        public_url="https://gridsense.test")
    assert app.http_url is not None and app.http_url.startswith("https://127.0.0.1:")
    ca_file = tmp_path / "ca" / "ca.crt"
    trust = ssl.create_default_context(cafile=str(ca_file))
    async with _client(app.http_url, verify=trust) as http:
        page = await http.get("/")
        assert page.status_code == 200 and "<div id=\"app\">" in page.text  # the web app
        assert page.headers["strict-transport-security"].startswith("max-age=")
        served = await http.get("/ca.crt")
        assert served.content == ca_file.read_bytes()
        assert served.headers["content-type"] == "application/x-x509-ca-cert"
    async with _client(app.http_url, verify=ssl.create_default_context()) as http:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await http.get("/")  # not trusted without the deployment CA
    redirect = app.redirect_url
    assert redirect is not None and redirect.startswith("http://127.0.0.1:")
    port = urlsplit(app.http_url).port
    async with _client(redirect) as plain:
        moved = await plain.get("/api/v1/incidents?state=open")
        assert moved.status_code == 308
        assert moved.headers["location"] == f"https://127.0.0.1:{port}/api/v1/incidents?state=open"
        download = await plain.get("/ca.crt")  # before the phone trusts anything
        assert download.status_code == 200 and download.content == ca_file.read_bytes()


def test_https_needs_an_https_public_url_for_signed_links(tmp_path: Path) -> None:
    config = write_server_config(tmp_path, mqtt_port=1, influx_url="http://127.0.0.1:1",
                                 database="d", http={"tls": {"ca_dir": "ca", "names": ["x"]}})
    with pytest.raises(ConfigError, match="public_url must be an https:// URL"):
        load_server_config(config)
    config = write_server_config(tmp_path, mqtt_port=1, influx_url="http://127.0.0.1:1",
                                 database="d", http={"redirect_port": 8080})
    with pytest.raises(ConfigError, match=r"http: redirect_port redirects to HTTPS: it needs"):
        load_server_config(config)


async def test_forwarded_proto_counts_only_from_a_trusted_proxy(
        start_server: ServerFactory) -> None:
    behind = await start_server(http={"forwarded_allow_ips": ["127.0.0.1"]})
    assert behind.http_url is not None
    async with _client(behind.http_url) as http:
        response = await http.get("/", headers=PROXIED)
        assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_ids_beyond_64_bits_are_refused_not_a_500(running_server: ServerApp) -> None:
    # Found by schemathesis: the id went to the SQLite driver, which cannot bind it (500).
    assert running_server.http_url is not None
    huge = 2**63
    async with _client(running_server.http_url) as http:
        control = {"Authorization": f"Bearer {await _token(http, 'control', 'ctl')}"}
        shown = await http.get(f"/api/v1/dead-letters/{huge}", headers=control)
        replayed = await http.post("/api/v1/dead-letters/replay", json={"ids": [huge]},
                                   headers=control)
        listed = await http.get("/api/v1/dead-letters", params={"before_id": huge},
                                headers=control)
        assert [shown.status_code, replayed.status_code, listed.status_code] == [422] * 3
        assert (await http.get(f"/api/v1/dead-letters/{huge - 1}",
                               headers=control)).status_code == 404
