"""The dynamic-security plugin's first state file: one admin client, nothing else.

Everything after that goes through the running broker (``mosquitto_dynsec.py``), which then
rewrites this file itself. The format and the hash are the plugin's own (what
``mosquitto_ctrl dynsec init`` writes): PBKDF2-HMAC-SHA512 over the password with a random salt,
both base64 in the file. Written here so no mosquitto_ctrl (mosquitto-clients) is needed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from .accounts import AccountError, AccountErrorKind, check_name, check_password

ADMIN_ROLE = "admin"
# mosquitto_ctrl 2.0.11 uses 101 and the broker hashes passwords set over its API the same
# way; gridsense generates long random passwords, so the iteration count is not what protects
# them. A larger count here costs every admin login, not more safety for a random password.
ITERATIONS = 1000
_SALT_BYTES = 12
# What the admin may do: the plugin's control topic, and watch the broker ($SYS) — no
# application topic: the admin manages accounts, it does not speak for a gateway or the server.
_CONTROL = "$CONTROL/dynamic-security/#"
_ADMIN_ACLS = [
    {"acltype": "publishClientSend", "topic": _CONTROL, "allow": True},
    {"acltype": "publishClientReceive", "topic": _CONTROL, "allow": True},
    {"acltype": "subscribePattern", "topic": _CONTROL, "allow": True},
    {"acltype": "publishClientReceive", "topic": "$SYS/#", "allow": True},
    {"acltype": "subscribePattern", "topic": "$SYS/#", "allow": True},
]
# Deny what no rule allows: sending and subscribing need a role's rule; receiving follows from
# what was allowed to be subscribed.
DEFAULT_ACL_ACCESS = {"publishClientSend": False, "publishClientReceive": True,
                      "subscribe": False, "unsubscribe": True}


def hash_password(password: str, *, salt: bytes | None = None,
                  iterations: int = ITERATIONS) -> dict[str, Any]:
    """The ``password``, ``salt`` and ``iterations`` fields of a dynsec client."""
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return {"password": base64.b64encode(digest).decode(), "salt": base64.b64encode(salt).decode(),
            "iterations": iterations}


def initial_state(admin: str, password: str) -> dict[str, Any]:
    check_name(admin)
    check_password(password)
    client = {"username": admin, "textName": "gridsense broker admin",
              **hash_password(password), "roles": [{"rolename": ADMIN_ROLE}]}
    return {"clients": [client],
            "roles": [{"rolename": ADMIN_ROLE, "acls": _ADMIN_ACLS}],
            "groups": [],
            "defaultACLAccess": DEFAULT_ACL_ACCESS}


def write_initial_state(path: Path, admin: str, password: str) -> bool:
    """Write the first state file unless one exists (the broker owns it from then on).
    True when written. Readable by its owner only: it holds password hashes."""
    if path.exists():
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AccountError(AccountErrorKind.INVALID,
                               f"{path} 已存在但不是 JSON / exists but is not JSON: {exc}"
                               ) from None
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    document = json.dumps(initial_state(admin, password), indent=2) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(document)
    return True
