"""Browser sessions on a real server (uvicorn, SQLite and PostgreSQL): the cookie's flags, CSRF
and Origin checks, logout and logout-everywhere seen by a second server process on the same
database, the live stream closing when its session ends, idle and absolute expiry."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
from pathlib import Path

import httpx
import pytest
from server_helpers import async_wait_until
from sqlalchemy import select
from web_support import Browser, client, sign_in, token
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gridsense_devtools.processes import BIN, env_without_proxies
from gridsense_server.app import ServerApp
from gridsense_server.db.web_models import AuditEntry, WebSession

SILENCE = {"grid": "g01", "minutes": 5, "note": "maintenance"}
FAST = "sessions: {stream_check_s: 0.3}"


async def _status(http: httpx.AsyncClient, browser: Browser, path: str = "/api/v1/auth/session",
                  **headers: str) -> int:
    response = await http.get(path, headers=browser.headers(csrf=False) | headers)
    return response.status_code


def _audit(app: ServerApp, action: str) -> list[AuditEntry]:
    with app.factory() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                    .order_by(AuditEntry.id)))


async def test_the_cookie_is_httponly_secure_strict_and_only_its_hash_is_stored(
    start_server, db_url: str
) -> None:
    app = await start_server(db_url=db_url)
    async with client(app) as http:
        browser = await sign_in(http, "control")
        flags = [part.strip().lower() for part in browser.set_cookie.split(";")]
        assert browser.set_cookie.startswith("__Host-gridsense=")
        assert {"httponly", "secure", "samesite=strict", "path=/"} <= set(flags)
        assert not any(flag.startswith("domain") for flag in flags)
        me = (await http.get("/api/v1/auth/session", headers=browser.headers(csrf=False))).json()
        assert (me["username"], me["role"], me["csrf_token"]) == ("control", "control",
                                                                   browser.csrf)
        assert me["name"] == "监控中心"  # the registry's name, for the page's header
    with app.factory() as session:
        stored = list(session.scalars(select(WebSession.id_hash)))
    assert stored == [hashlib.sha256(browser.cookie.encode()).hexdigest()]
    assert browser.cookie not in stored


async def test_a_change_needs_the_csrf_token_and_this_servers_origin(
    start_server, db_url: str
) -> None:
    app = await start_server(db_url=db_url)
    async with client(app) as http:
        browser = await sign_in(http, "control")
        bare = await http.post("/api/v1/silences", json=SILENCE,
                               headers=browser.headers(csrf=False))
        assert bare.status_code == 403 and "CSRF" in bare.json()["detail"]
        forged = browser.headers() | {"X-CSRF-Token": "0" * 64}
        assert (await http.post("/api/v1/silences", json=SILENCE,
                                headers=forged)).status_code == 403
        hostile = await http.post("/api/v1/silences", json=SILENCE,
                                  headers=browser.headers(origin="http://evil.example:8000"))
        assert hostile.status_code == 403 and "cross-site" in hostile.json()["detail"]
        ours = app.http_url.removesuffix("/")
        made = await http.post("/api/v1/silences", json=SILENCE, headers=browser.headers(
            origin=ours))
        assert made.status_code == 201, made.text
        # A script's bearer token needs no CSRF token: no browser attaches one by itself.
        bearer = await token(http, "control")
        assert (await http.post("/api/v1/silences", json=SILENCE, headers={
            "Authorization": f"Bearer {bearer}"})).status_code == 201
        # A hostile page cannot sign its visitor in as itself either (login CSRF).
        login_csrf = await http.post("/api/v1/auth/session", headers={
            "Origin": "http://evil.example:8000"}, json={"username": "control",
                                                          "password": "ctl"})
        assert login_csrf.status_code == 403
    await async_wait_until(lambda: len(_audit(app, "security.refused")) == 4, 10,
                           "the four refusals audited")
    reasons = [row.detail for row in _audit(app, "security.refused")]
    assert sum("CSRF" in r for r in reasons) == 2 and sum("evil.example" in r for r in reasons) == 2


async def test_logout_and_logout_everywhere_reach_a_second_server_and_its_streams(
    start_server, db_url: str
) -> None:
    # Two server processes' worth on one database (no spool: they would share its folder).
    first = await start_server(db_url=db_url, auth_yaml=FAST, client_id="web-a",
                               spool_max_mb=0)
    second = await start_server(db_url=db_url, auth_yaml=FAST, client_id="web-b",
                                spool_max_mb=0)
    assert second.http_url is not None
    ws_url = second.http_url.replace("http://", "ws://") + "/api/v1/stream"
    async with client(first) as http_a, client(second) as http_b:
        phone = await sign_in(http_a, "worker-g01")
        desk = await sign_in(http_a, "worker-g01")
        assert await _status(http_b, phone) == 200  # the other process knows the session
        async with connect(ws_url, additional_headers=phone.headers(csrf=False), proxy=None,
                           open_timeout=30) as stream:
            assert (await http_a.delete("/api/v1/auth/session",
                                        headers=phone.headers())).status_code == 204
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await stream.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
            assert closed.value.rcvd.reason == "session ended"
        assert await _status(http_b, phone) == 401
        assert await _status(http_b, desk) == 200

        # Sign out everywhere from a third session: the desk's ends too.
        laptop = await sign_in(http_b, "worker-g01")
        ended = await http_b.post("/api/v1/auth/logout-everywhere", headers=laptop.headers())
        assert ended.json() == {"revoked": 2}
        assert await _status(http_a, desk) == 401 and await _status(http_a, laptop) == 401

        # An admin ends someone else's sessions; a worker may not.
        again = await sign_in(http_a, "worker-g01")
        admin = await sign_in(http_b, "control")
        refused = await http_a.post("/api/v1/auth/users/control/logout-everywhere",
                                    headers=again.headers())
        assert refused.status_code == 403
        done = await http_b.post("/api/v1/auth/users/worker-g01/logout-everywhere",
                                 headers=admin.headers())
        assert done.json() == {"revoked": 1}
        assert await _status(http_a, again) == 401 and await _status(http_a, admin) == 200
    actors = [(row.actor, row.target) for row in _audit(first, "logout.everywhere")]
    assert actors == [("worker-g01", "worker-g01"), ("control", "worker-g01")]
    assert [row.actor for row in _audit(first, "logout")] == ["worker-g01"]


async def test_a_script_streams_by_token_and_a_stream_without_either_is_refused(
    start_server,
) -> None:
    app = await start_server()
    assert app.http_url is not None
    base = app.http_url.replace("http://", "ws://") + "/api/v1/stream"
    async with client(app) as http:
        bearer = await token(http, "control")
        browser = await sign_in(http, "control")
    async with connect(f"{base}?token={bearer}", proxy=None, open_timeout=30):
        pass  # accepted and open
    for headers in ({}, browser.headers(csrf=False, origin="http://evil.example")):
        async with connect(base, additional_headers=headers, proxy=None,
                           open_timeout=30) as stream:
            with pytest.raises(ConnectionClosed) as closed:
                await stream.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_idle_sessions_end_and_background_polls_do_not_keep_them_alive(
    start_server,
) -> None:
    app = await start_server(auth_yaml="sessions: {idle_s: 2, absolute_s: 3600, "
                                       "stream_check_s: 0.3}")
    async with client(app) as http:
        browser = await sign_in(http, "worker-g01")
        background = {"X-Gridsense-Background": "1"}

        async def polled_until_ended() -> bool:
            return await _status(http, browser, "/api/v1/gateways", **background) == 401

        await async_wait_until(polled_until_ended, 30, "the idle session ended")
    with app.factory() as session:
        row = session.scalars(select(WebSession)).one()
    assert row.revoked_at is None  # ended by time, not by anyone


async def test_the_absolute_limit_ends_even_a_busy_session(start_server) -> None:
    app = await start_server(auth_yaml="sessions: {idle_s: 3600, absolute_s: 2}")
    async with client(app) as http:
        browser = await sign_in(http, "worker-g01")
        assert await _status(http, browser, "/api/v1/incidents") == 200

        async def busy_until_ended() -> bool:
            return await _status(http, browser, "/api/v1/incidents") == 401

        await async_wait_until(busy_until_ended, 30, "the absolute limit reached")


async def test_odd_input_is_refused_cleanly_never_a_500(start_server, db_url: str) -> None:
    """PostgreSQL stores no NUL in text and no integer beyond 64 bits: refused up front."""
    app = await start_server(db_url=db_url)
    async with client(app) as http:
        auth = {"Authorization": f"Bearer {await token(http, 'control')}"}
        answers = [
            await http.post("/api/v1/auth/session", json={"username": "a\x00b", "password": "x"}),
            await http.post("/api/v1/auth/token", json={"username": "a\x00b", "password": "x"}),
            await http.get("/api/v1/audit", params={"actor": "a\x00"}, headers=auth),
            await http.get("/api/v1/audit", params={"before_id": 2**64}, headers=auth),
            await http.post("/api/v1/auth/unlock", json={"subject": "a\x00"}, headers=auth),
            await http.post("/api/v1/auth/users/a%00b/logout-everywhere", headers=auth),
        ]
    assert [a.status_code for a in answers] == [422, 401, 422, 422, 422, 422]
    assert [row.target for row in _audit(app, "login.failure")] == ["a?b"]


async def test_the_cli_ends_a_users_sessions_without_the_server(
    start_server, tmp_path: Path
) -> None:
    app = await start_server()
    async with client(app) as http:
        phone = await sign_in(http, "worker-g01")
        done = await asyncio.to_thread(
            subprocess.run, [str(BIN / "gridsense-server"), "auth", "logout-everywhere",
                             "worker-g01", "--json", "--config", str(tmp_path / "server.yaml")],
            capture_output=True, text=True, timeout=120, env=env_without_proxies(), check=False)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"revoked": 1}
        assert await _status(http, phone) == 401
    [row] = _audit(app, "logout.everywhere")
    assert row.actor.startswith("cli:") and (row.target, row.address) == ("worker-g01", "local")
