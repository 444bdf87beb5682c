"""The demo's incident lifecycle: a fast policy so escalation can be watched, and what to try.

Accept within 30 s; the grid workers are paged at once, the grid leader 30 s later, the
community duty officer after 90 s, the street command centre after 150 s. A handler who goes
quiet for 2 minutes after accepting is reminded, and un-accepted after 4.
"""

from __future__ import annotations

FAST_POLICY = {
    "tick_s": 1.0,
    "sla": {"accept_s": 30, "resolve_s": 600},
    "policies": {
        "demo-fast": {
            "steps": [
                {"after_s": 0, "notify": ["workers"], "channels": ["app"]},
                {"after_s": 30, "notify": ["leader"], "channels": ["app"]},
                {"after_s": 90, "notify": ["duty_officer"], "channels": ["app"]},
                {"after_s": 150, "notify": ["command_centre"], "channels": ["app"]},
            ],
            "remind_after_s": 120,
            "unaccept_after_s": 240,
        },
    },
}


def lifecycle_config(base: str) -> dict[str, object]:
    """The server config's ``lifecycle:`` section; signed links point at ``base``."""
    return {**FAST_POLICY, "public_url": base}


def what_to_try(base: str) -> str:
    return f"""\
Lifecycle (fast demo policy: accept within 30 s, then the grid leader is paged):
  1. sign in at {base}/ as worker-g01, click the boiler's incident: its history shows the page
  2. wait 30 s without accepting: the history shows "escalate … leader → leader-g01"
  3. as worker-g01: Accept, then Resolve (note, photo links); as control: Verify and close
  the same over HTTP: POST {base}/api/v1/incidents/<id>/accept (resolve, verify, return,
                      defer, invalidate) with {{"note": "...", "photos": []}}"""
