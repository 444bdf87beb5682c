"""The web app: one page for the control room and for grid workers on their phones.

Built from ``server/web`` (Vite + Preact + TypeScript, docs/frontend.md) into ``dist/`` by
``scripts/bootstrap``; served by the server itself (no CDN at run time). The page talks only to
the public HTTP API and the WebSocket stream, like any other client.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI, HTTPException, status
from fastapi.responses import FileResponse

DIST = Path(__file__).resolve().parent / "dist"
ASSETS = DIST / "assets"
# Asset names carry a content hash (a new build, new names): cached for a year, never revalidated.
ASSET_CACHE = "public, max-age=31536000, immutable"
ASSET_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")
ICON_NAME = re.compile(r"^icon-[0-9]{2,4}\.png$")
NOT_BUILT = ("网页尚未构建 / the web app is not built: run scripts/bootstrap "
             "(or `npm ci && npm run build` in server/web)")


def mount(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        page = DIST / "index.html"
        if not page.is_file():
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, NOT_BUILT)
        # Always revalidated: it names the current build's assets.
        return FileResponse(page, headers={"Cache-Control": "no-cache"})

    @app.get("/sw.js", include_in_schema=False)
    async def service_worker() -> FileResponse:
        # At the root, so its scope is the whole app; revalidated so a new build's worker
        # replaces the old one at the next visit.
        return _dist_file("sw.js", "text/javascript", "no-cache")

    @app.get("/manifest.webmanifest", include_in_schema=False)
    async def manifest() -> FileResponse:
        return _dist_file("manifest.webmanifest", "application/manifest+json", "no-cache")

    @app.get("/icons/{name}", include_in_schema=False)
    async def icon(name: str) -> FileResponse:
        if not ICON_NAME.match(name):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no icon {name[:100]!r}")
        return _dist_file(f"icons/{name}", "image/png", "public, max-age=86400")

    @app.get("/assets/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        found = ASSETS / name
        if not ASSET_NAME.match(name) or name.startswith(".") or not found.is_file():
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no asset {name[:100]!r}")
        return FileResponse(found, headers={"Cache-Control": ASSET_CACHE})


def _dist_file(relative: str, media_type: str, cache: str) -> FileResponse:
    """A file the build copies from server/web/public (the PWA's worker, manifest, icons)."""
    found = DIST / relative
    if not found.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND if DIST.is_dir()
                            else status.HTTP_503_SERVICE_UNAVAILABLE, NOT_BUILT)
    return FileResponse(found, media_type=media_type, headers={"Cache-Control": cache})
