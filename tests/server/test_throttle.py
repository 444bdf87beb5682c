"""Login throttling: the module on SQLite and PostgreSQL with a hand-moved clock (growing delay,
lockout, window, scopes, caps), then a real server pair on one database behind a trusted
proxy (per account, per address, 429 with Retry-After, unlock by API and CLI, all audited)."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from server_helpers import async_wait_until
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from web_support import PASSWORDS, client

from gridsense_devtools.processes import BIN, env_without_proxies
from gridsense_server.app import ServerApp
from gridsense_server.auth.addresses import client_address, parse_networks, throttle_subject
from gridsense_server.auth.throttle import Throttle
from gridsense_server.config import ThrottleConfig
from gridsense_server.db.web_models import AuditEntry, ThrottleEntry

T0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
CONFIG = ThrottleConfig(free_failures=2, base_delay_s=1, max_delay_s=8, lockout_after=8,
                        lockout_s=900, window_s=3600, max_rows=100)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def factory(migrated_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    return migrated_factory


def test_the_wait_grows_then_locks_and_is_forgotten_after_the_window(
    factory: sessionmaker[Session],
) -> None:
    clock = Clock()
    throttle = Throttle(factory, CONFIG, "login", clock)
    subjects = ["user:alice", "addr:10.0.0.7"]
    waits = []
    for _ in range(8):
        assert throttle.blocked(subjects) is None  # each try made once the wait is over
        blocked = throttle.failure(subjects)
        waits.append(blocked.retry_after_s if blocked else 0)
        clock.now += timedelta(seconds=waits[-1])
    assert waits == [0, 0, 1, 2, 4, 8, 8, 900]
    locked = throttle.blocked(["user:alice"])
    assert locked is None  # the clock has moved past the lockout...
    clock.now -= timedelta(seconds=1)  # ...one second before its end it still holds
    locked = throttle.blocked(["user:alice"])
    assert locked is not None and locked.locked and locked.retry_after_s == 1
    # An hour without failures: a fresh start, free tries again.
    clock.now += timedelta(seconds=CONFIG.window_s + 2)
    assert throttle.failure(subjects) is None


def test_a_success_clears_the_account_not_the_address_and_scopes_are_separate(
    factory: sessionmaker[Session],
) -> None:
    clock = Clock()
    login = Throttle(factory, CONFIG, "login", clock)
    enroll = Throttle(factory, CONFIG, "enroll", clock)
    for _ in range(3):
        login.failure(["user:bob", "addr:10.0.0.8"])
    assert login.blocked(["user:bob"]) is not None
    assert enroll.blocked(["user:bob", "addr:10.0.0.8"]) is None  # its own counts
    login.success(["user:bob"])
    assert login.blocked(["user:bob"]) is None
    assert login.blocked(["addr:10.0.0.8"]) is not None  # a guesser's own login clears nothing
    enroll.failure(["addr:10.0.0.8"])
    assert login.unlock(["addr:10.0.0.8"]) == 2  # an admin's unlock: every scope


def test_stale_rows_are_pruned_and_the_table_is_capped(factory: sessionmaker[Session]) -> None:
    clock = Clock()
    throttle = Throttle(factory, CONFIG, "login", clock)
    for n in range(130):
        clock.now += timedelta(seconds=1)
        throttle.failure([f"addr:10.1.{n // 250}.{n % 250}"])
    assert throttle.prune() == 30  # none stale yet: the 30 oldest go for the cap
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(ThrottleEntry)) == 100
        oldest = session.scalar(select(func.min(ThrottleEntry.last_failure_at)))
    assert oldest == T0 + timedelta(seconds=31)
    clock.now += timedelta(seconds=CONFIG.window_s + 1)
    assert throttle.prune() == 100


def test_forwarded_addresses_are_believed_only_from_trusted_proxies() -> None:
    proxies = parse_networks(["127.0.0.1", "10.9.0.0/16"])
    assert client_address("127.0.0.1", "203.0.113.5", proxies) == "203.0.113.5"
    # The client's own X-Forwarded-For entries come first: the nearest untrusted hop counts.
    assert client_address("127.0.0.1", "1.2.3.4, 203.0.113.5, 10.9.1.1", proxies) == \
        "203.0.113.5"
    assert client_address("198.51.100.7", "203.0.113.5", proxies) == "198.51.100.7"
    assert client_address("127.0.0.1", None, proxies) == "127.0.0.1"
    assert throttle_subject("2001:db8:1:2:aaaa::1") == throttle_subject("2001:db8:1:2:bbbb::9") \
        == "addr:2001:db8:1:2::/64"
    assert throttle_subject("10.0.0.7") == "addr:10.0.0.7"


SERVER_THROTTLE = ("throttle: {free_failures: 1, base_delay_s: 30, max_delay_s: 60, "
                   "lockout_after: 5, lockout_s: 900, trusted_proxies: [127.0.0.1]}")
ATTACKER = {"X-Forwarded-For": "203.0.113.5"}
OFFICE = {"X-Forwarded-For": "198.51.100.7"}


async def _login(http: httpx.AsyncClient, username: str, password: str,
                 headers: dict[str, str], route: str = "session") -> httpx.Response:
    return await http.post(f"/api/v1/auth/{route}", headers=headers,
                           json={"username": username, "password": password})


def _audit(app: ServerApp, action: str) -> list[AuditEntry]:
    with app.factory() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                    .order_by(AuditEntry.id)))


async def test_guesses_are_throttled_per_account_and_address_across_servers_and_unlocked(
    start_server, db_url: str, tmp_path: Path
) -> None:
    one = await start_server(db_url=db_url, auth_yaml=SERVER_THROTTLE, client_id="thr-a",
                             spool_max_mb=0)
    two = await start_server(db_url=db_url, auth_yaml=SERVER_THROTTLE, client_id="thr-b",
                             spool_max_mb=0)
    async with client(one) as http_one, client(two) as http_two:
        first = await _login(http_one, "worker-g01", "guess-1", ATTACKER)
        assert first.status_code == 401 and "retry-after" not in first.headers
        second = await _login(http_two, "worker-g01", "guess-2", ATTACKER, route="token")
        assert second.status_code == 401 and second.headers["retry-after"] == "30"
        # Blocked now, even with the right password, on either server and either route.
        right = await _login(http_one, "worker-g01", PASSWORDS["worker-g01"], ATTACKER)
        assert right.status_code == 429 and 1 <= int(right.headers["retry-after"]) <= 30
        assert "too many failed sign-ins" in right.json()["detail"]
        office = await _login(http_two, "worker-g01", PASSWORDS["worker-g01"], OFFICE, "token")
        assert office.status_code == 429  # the account is held, from anywhere
        other = await _login(http_one, "worker-g02", PASSWORDS["worker-g02"], ATTACKER)
        assert other.status_code == 429  # and so is the address, for any account

        admin = await _login(http_two, "control", PASSWORDS["control"], OFFICE)
        assert admin.status_code == 200
        admin_headers = OFFICE | {"Cookie": admin.headers["set-cookie"].split(";")[0],
                                  "X-CSRF-Token": admin.json()["csrf_token"]}
        unlocked = await http_two.post("/api/v1/auth/unlock", headers=admin_headers,
                                       json={"subject": "worker-g01"})
        assert unlocked.json() == {"cleared": 1}
        assert (await _login(http_one, "worker-g01", PASSWORDS["worker-g01"], OFFICE)
                ).status_code == 200
        assert (await _login(http_one, "worker-g02", PASSWORDS["worker-g02"], ATTACKER)
                ).status_code == 429  # the address is still held

        cli = await asyncio.to_thread(
            subprocess.run, [str(BIN / "gridsense-server"), "auth", "unlock", "203.0.113.5",
                             "--json", "--config", str(tmp_path / "server.yaml")],
            capture_output=True, text=True, timeout=120, env=env_without_proxies(), check=False)
        assert cli.returncode == 0, cli.stderr
        assert cli.stdout.strip() == '{"cleared": 1}'
        assert (await _login(http_one, "worker-g02", PASSWORDS["worker-g02"], ATTACKER)
                ).status_code == 200

    failures = _audit(one, "login.failure")
    assert [(f.target, f.address) for f in failures] == [("worker-g01", "203.0.113.5")] * 2
    await async_wait_until(lambda: len(_audit(one, "login.blocked")) == 4, 10,
                           "the four blocked attempts audited (through the refusal sink)")
    unlocks = _audit(one, "auth.unlock")
    assert [(u.actor[:4], u.target) for u in unlocks] == [("cont", "worker-g01"),
                                                           ("cli:", "203.0.113.5")]
    assert {s.target for s in _audit(one, "login.success")} == {"control", "worker-g01",
                                                                "worker-g02"}
