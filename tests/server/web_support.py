"""Helpers for the browser-session tests: sign in as a browser would, keep the cookie by hand.

httpx (rightly) never sends a Secure cookie over plain http://, so the tests carry it in a
Cookie header themselves; the flags the browser would enforce are asserted from Set-Cookie.
"""

from __future__ import annotations

from dataclasses import dataclass
from http.cookies import SimpleCookie

import httpx

from gridsense_server.api.web_auth import SECURE_COOKIE
from gridsense_server.app import ServerApp

PASSWORDS = {"worker-g01": "demo", "worker-g02": "demo2", "control": "ctl"}


@dataclass
class Browser:
    """One signed-in browser: its session cookie, its CSRF token, the Set-Cookie it got."""

    cookie: str
    csrf: str
    set_cookie: str

    def headers(self, *, csrf: bool = True, origin: str | None = None) -> dict[str, str]:
        found = {"Cookie": f"{SECURE_COOKIE}={self.cookie}"}
        if csrf:
            found["X-CSRF-Token"] = self.csrf
        if origin is not None:
            found["Origin"] = origin
        return found


def client(app: ServerApp) -> httpx.AsyncClient:
    assert app.http_url is not None
    return httpx.AsyncClient(base_url=app.http_url, trust_env=False, timeout=30)


async def sign_in(http: httpx.AsyncClient, username: str, password: str | None = None,
                  **headers: str) -> Browser:
    response = await http.post("/api/v1/auth/session", headers=headers, json={
        "username": username, "password": password or PASSWORDS[username]})
    assert response.status_code == 200, response.text
    raw = response.headers["set-cookie"]
    cookie = SimpleCookie()
    cookie.load(raw)
    return Browser(cookie[SECURE_COOKIE].value, response.json()["csrf_token"], raw)


async def token(http: httpx.AsyncClient, username: str, **headers: str) -> str:
    response = await http.post("/api/v1/auth/token", headers=headers, json={
        "username": username, "password": PASSWORDS[username]})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]
