"""The demo's electronic passes: resident 陈静 (ly-0101, 1号楼) gets a one-time sign-in code
the way the control room would print one, and the demo says how to open the pass on a phone
and invite a visitor. scripts/demo.py calls these; nothing here runs on its own.

The gate side (a QR scanner on gw-03 deciding on the pass offline) is the gateway's work; until
it is in, the pass and the visitor link show and verify, and the access log names visitor and
inviter for pass uses a gateway reports.
"""

from __future__ import annotations

from gridsense_devtools.http import http_json, login

RESIDENT = ("ly-0101", "陈静")


def seed_resident_code(base: str) -> dict[str, str]:
    """A one-time sign-in code for the demo's first resident (the control room's button)."""
    return dict(http_json("POST", f"{base}/api/v1/credentials/{RESIDENT[0]}/resident-code",
                          login(base), {}))


def what_to_try_passes(base: str, code: dict[str, str]) -> str:
    resident, name = RESIDENT
    until = code["expires_at"][:16]
    return f"""Electronic passes (电子出入证): resident {name} ({resident}, building b1) signs
in on a phone with a one-time code; the control room prints one at {base}/#/passes.
  on the phone    open {base}/#/r  and enter  {code["code"]}   (works once, until {until})
                  the pass shows the current minute's QR (a day of them is kept for no signal);
                  "邀请访客" makes a visitor pass for building b1 and a link to send
  visitor's link  opens the visitor's QR, window and uses, no sign-in
  control room    {base}/#/passes: the access log names each pass use's visitor and inviter;
                  revoke a visitor pass there or on the resident's phone
  keys            .venv/bin/gridsense-server passes keys --config <config>  (rotate-key, code)"""
