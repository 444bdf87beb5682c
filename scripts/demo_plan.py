"""The demo's site plan: 莲园社区's generated drawing (gridsense_devtools.site_plan) uploaded as
the community's plan, and the demo's points and gateways placed on it, through the plan API
as the control room would."""

from __future__ import annotations

from gridsense_devtools.http import http, http_json, login
from gridsense_devtools.site_plan import DEMO_PLACES, site_plan_svg

COMMUNITY = "ly"


def install_site_plan(base: str) -> int:
    """Upload the plan and place every demo point and gateway; returns how many were placed."""
    try:
        token = login(base)
        http(f"{base}/api/v1/plans/{COMMUNITY}/image", token, site_plan_svg().encode(),
             method="PUT", content_type="image/svg+xml")
        for (kind, target), (x, y) in DEMO_PLACES.items():
            http_json("PUT", f"{base}/api/v1/plans/{COMMUNITY}/markers/{kind}/{target}", token,
                      {"x": round(x, 4), "y": round(y, 4)})
    except OSError as exc:  # urllib's errors, an HTTP error answer among them
        raise RuntimeError(f"the site plan of {COMMUNITY} could not be installed: {exc}") from exc
    return len(DEMO_PLACES)


def what_to_try_plan(base: str, placed: int) -> str:
    return f"""\
Site plan (平面图) of 莲园社区, {placed} points and gateways placed on it, coloured by state:
  GET {base}/api/v1/plans/{COMMUNITY}   image: {base}/api/v1/plans/{COMMUNITY}/image
  states only: GET {base}/api/v1/plans/{COMMUNITY}/state"""


def plan_summary(base: str, token: str) -> None:
    """Each marker's colour at the end, as the control room's plan shows it."""
    state = http_json("GET", f"{base}/api/v1/plans/{COMMUNITY}/state", token)
    for marker in state["markers"]:
        print(f"  plan marker {marker['kind']:<7} {marker['id']:<22} {marker['status']}"
              + (f" ({marker['severity']}, {marker['open']} open)" if marker["open"] else ""))
