"""How the built web app is served: the page revalidated on every load (it names the build's
assets), the hashed assets cached for a year, nothing outside the assets folder, and a clear
503 when the app has not been built."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gridsense_server import web


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text('<div id="app"></div>')
    (dist / "assets" / "index-AbC123.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("not served")
    monkeypatch.setattr(web, "DIST", dist)
    monkeypatch.setattr(web, "ASSETS", dist / "assets")
    app = FastAPI()
    web.mount(app)
    return TestClient(app)


def test_page_revalidated_assets_cached_for_a_year(built: TestClient) -> None:
    page = built.get("/")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
    asset = built.get("/assets/index-AbC123.js")
    assert asset.status_code == 200 and asset.text == "console.log(1)"
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "javascript" in asset.headers["content-type"]


def test_nothing_outside_the_assets_folder(built: TestClient) -> None:
    for path in ("/assets/..%2Fsecret.txt", "/assets/..%2F..%2Fsecret.txt", "/assets/.hidden",
                 "/assets/missing.js"):
        assert built.get(path).status_code == 404, path


def test_an_unbuilt_app_says_how_to_build_it(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web, "DIST", tmp_path / "nothing")
    app = FastAPI()
    web.mount(app)
    answer = TestClient(app).get("/")
    assert answer.status_code == 503 and "npm run build" in answer.json()["detail"]
