"""HTTP(S) calls to a gridsense server on loopback (urllib, never through a proxy); HTTPS
trusts the system's CAs plus the deployment CA given to ``trust_ca``."""

from __future__ import annotations

import contextlib
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def trust_ca(ca_file: Path) -> None:
    """Make every call below trust the server certificates ``ca_file`` issued (the demo's CA)."""
    global _opener
    context = ssl.create_default_context()  # the system's CAs, and this one
    context.load_verify_locations(cafile=str(ca_file))
    _opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                          urllib.request.HTTPSHandler(context=context))


def opener() -> urllib.request.OpenerDirector:
    """The opener every call here uses (with the trusted CA), for a caller that needs the
    answer's headers (a cookie)."""
    return _opener


def http(url: str, token: str | None = None, body: bytes | None = None, *,
         method: str | None = None, content_type: str = "application/json",
         timeout: float = 10) -> tuple[bytes, str]:
    """GET (or POST with ``body``, or ``method``); returns the body and its content type."""
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    with _opener.open(request, timeout=timeout) as response:
        return response.read(), response.headers.get("Content-Type", "")


def http_json(method: str, url: str, token: str | None = None, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    return json.loads(http(url, token, data, method=method)[0])


def try_http_json(method: str, url: str, token: str | None = None) -> Any:
    """The answer, or None while the server is not there (or answers an error)."""
    with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
        return http_json(method, url, token)
    return None


def login(base: str, username: str = "control", password: str = "demo") -> str:
    """A bearer token for one of the demo's or the tests' accounts."""
    reply = http_json(
        "POST", f"{base}/api/v1/auth/token", body={"username": username, "password": password}
    )
    return str(reply["access_token"])


def health(base: str) -> dict[str, Any] | None:
    """/healthz's body — on 503 (down, with its reasons) too: the counters are there either
    way — or None while the server is not there."""
    try:
        return http_json("GET", f"{base}/healthz")
    except urllib.error.HTTPError as exc:
        if exc.code != 503:
            return None
        with contextlib.suppress(ValueError):
            return json.loads(exc.read())
        return None
    except (OSError, urllib.error.URLError, ValueError):
        return None


def server_up(base: str) -> bool:
    return health(base) is not None
