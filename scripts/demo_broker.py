"""The demo's broker: Mosquitto with the dynamic-security plugin, its first state holding only
the broker admin, then an account for the server and each simulated gateway added on the
running broker through the same interface an operator's CLI uses. Every login's client id is
pinned, so one gateway's password cannot take over another's session (or the server's).
scripts/demo.py calls these; nothing here runs on its own.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from gridsense_devtools.services import Mosquitto, TlsListener
from gridsense_server.broker import Role
from gridsense_server.broker.dynsec_file import write_initial_state
from gridsense_server.broker.mosquitto_dynsec import dynsec_accounts

ADMIN = "gridsense-admin"
SERVER_ACCOUNT = "gridsense-server-1"  # also the server's client id (and its telemetry one's base)
# Sized so a day-long server outage of the demo's gateways still fits; docs/operations.md
# explains each setting and what happens at the limit.
BROKER_LIMITS = [
    "max_queued_messages 100000",
    "max_queued_bytes 0",
    "max_inflight_messages 100",
    "max_packet_size 1100000",
    "persistent_client_expiration 7d",
]


def secret_file(work: Path, account: str) -> Path:
    return work / "secrets" / f"{account}.password"


def write_secret(work: Path, account: str) -> str:
    """A broker password for one account, in a file only this user can read."""
    password = secrets.token_urlsafe(18)
    path = secret_file(work, account)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password


def demo_broker(work: Path, port: int, listener: TlsListener) -> Mosquitto:
    """The broker, not started; its state file holds only the admin."""
    state = work / "mosquitto" / "dynamic-security.json"
    write_initial_state(state, ADMIN, write_secret(work, ADMIN))
    return Mosquitto(work / "mosquitto", port, persistence=True, dynsec_file=state,
                     extra_config=BROKER_LIMITS, tls=listener)


def add_accounts(work: Path, port: int, gateways: list[str], server_workers: int = 1) -> None:
    """On the running broker: the server's account and one per gateway, each password in
    ``secrets/<account>.password``. With several server workers, one account per worker
    (``<server>-w<i>``, its client ids pinned), all with the server's password file."""
    admin_password = secret_file(work, ADMIN).read_text().strip()
    with dynsec_accounts("127.0.0.1", port, ADMIN, admin_password) as accounts:
        server_password = write_secret(work, SERVER_ACCOUNT)
        accounts.add(SERVER_ACCOUNT, Role.SERVER, server_password)
        for index in range(server_workers if server_workers > 1 else 0):
            accounts.add(f"{SERVER_ACCOUNT}-w{index}", Role.SERVER, server_password)
        for gateway in gateways:
            accounts.add(gateway, Role.GATEWAY, write_secret(work, gateway))


def what_to_try_broker(work: Path, port: int) -> str:
    secrets_dir = work / "secrets"
    return f"""Broker accounts (Mosquitto dynamic security; docs/operations.md, "Broker accounts"):
  list            .venv/bin/gridsense-server broker account list --port {port} \\
                    --admin-password-file {secrets_dir}/{ADMIN}.password
  takeover, refused without disturbing gw-01:
                  mosquitto_sub -p {port} -u gw-02 -P "$(cat {secrets_dir}/gw-02.password)" \\
                    -i gw-01 -t 'gridsense/v1/gw-02/config'
                  → Connection Refused: not authorised; gw-01 stays connected"""
