"""A plan image's type and size come from its bytes: real PNG and JPEG files (encoded by OpenCV)
and SVG sizes from width/height or the viewBox."""

from __future__ import annotations

from typing import get_args

import cv2
import numpy as np
import pytest

from gridsense_devtools.site_plan import site_plan_svg
from gridsense_server.i18n import LANGUAGES, catalogue
from gridsense_server.plans.sniff import ImageRefused, PlanImage, sniff
from gridsense_server.plans.state import Status


def encoded(extension: str, width: int, height: int) -> bytes:
    ok, data = cv2.imencode(extension, np.zeros((height, width, 3), np.uint8))
    assert ok
    return data.tobytes()


@pytest.mark.parametrize("extension", [".png", ".jpg"])
def test_png_and_jpeg_sizes_are_read_from_their_headers(extension: str) -> None:
    image = sniff(encoded(extension, 321, 123), 1000)
    assert (image.width, image.height) == (321, 123)
    assert image.content_type == ("image/png" if extension == ".png" else "image/jpeg")


@pytest.mark.parametrize(("svg", "size"), [
    ('<svg xmlns="http://www.w3.org/2000/svg" width="640" height="480"/>', (640, 480)),
    ('<svg xmlns="http://www.w3.org/2000/svg" width="640px" height="480.4px"/>', (640, 480)),
    ('<svg xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 800 600"/>', (800, 600)),
    ('\ufeff<?xml version="1.0" encoding="UTF-8"?>\n<!-- drawn by hand -->\n'
     '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0,0,50,40"><rect width="5" '
     'height="5" fill="url(#g)"/><use href="#g"/></svg>', (50, 40)),
])
def test_svg_sizes(svg: str, size: tuple[int, int]) -> None:
    assert sniff(svg.encode(), 1000) == PlanImage("image/svg+xml", *size)


def test_the_generated_site_plan_is_an_svg_the_server_takes() -> None:
    assert sniff(site_plan_svg().encode(), 16_384) == PlanImage("image/svg+xml", 1200, 800)
    assert "莲园社区" in site_plan_svg() and "1号楼" in site_plan_svg()


def test_a_side_beyond_the_limit_is_refused() -> None:
    with pytest.raises(ImageRefused, match="outside 1–100 pixels"):
        sniff(encoded(".png", 101, 10), 100)


def test_every_marker_status_has_words_in_both_languages() -> None:
    for language in LANGUAGES:
        assert set(catalogue(language).messages["marker_status"]) == set(get_args(Status))
