"""A test's HTTP client for a running server: signs each user in once (bearer token) and acts
as them; the passwords are those of the test community (gridsense_devtools.community)."""

from __future__ import annotations

from typing import Any

import httpx

PASSWORDS = {"worker-g01": "demo", "worker-g02": "demo2", "control": "ctl",
             "installer-ly": "demo"}


class Api:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.tokens: dict[str, str] = {}

    async def as_(self, user: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if user not in self.tokens:
            reply = await self.http.post("/api/v1/auth/token",
                                         json={"username": user, "password": PASSWORDS[user]})
            self.tokens[user] = reply.json()["access_token"]
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {self.tokens[user]}"}
        return await self.http.request(method, path, **kwargs, headers=headers)

    async def act(self, user: str, incident: str, action: str, **body: Any) -> httpx.Response:
        return await self.as_(user, "POST", f"/api/v1/incidents/{incident}/{action}", json=body)

    async def json(self, user: str, path: str, **params: Any) -> Any:
        """GET that must succeed: the decoded body."""
        reply = await self.as_(user, "GET", path, params=params)
        assert reply.status_code == 200, reply.text
        return reply.json()
