"""Broker accounts on a real Mosquitto with the dynamic-security plugin: a client id is bound to
its account, a takeover attempt is refused without disturbing the victim, accounts are added,
changed and revoked on the running broker, and a gateway stays under its own prefix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from broker_support import (
    ADMIN,
    NOT_AUTHORIZED,
    DynsecBroker,
    Peer,
    connect,
    peers,
    start_dynsec_broker,
)

from gridsense_protocol.topics import EDGE_PUBLISHED, Kind, topic_for
from gridsense_server.broker import AccountError, AccountErrorKind, Role
from gridsense_server.broker.dynsec_file import write_initial_state

PASSWORDS = {"gw-01": "gw-01-password-secret", "gw-02": "gw-02-password-secret",
             "gridsense-server-1": "server-1-password-secret"}
SERVER, SERVER_TELEMETRY = "gridsense-server-1", "gridsense-server-1.telemetry"


@pytest.fixture
def dynsec(tmp_path: Path) -> Iterator[DynsecBroker]:
    running = start_dynsec_broker(tmp_path / "broker")
    with running.accounts() as accounts:
        accounts.add("gw-01", Role.GATEWAY, PASSWORDS["gw-01"])
        accounts.add("gw-02", Role.GATEWAY, PASSWORDS["gw-02"])
        accounts.add(SERVER, Role.SERVER, PASSWORDS[SERVER])
    yield running
    running.broker.stop()


def login(dynsec: DynsecBroker, opened: list[Peer], username: str | None, client_id: str,
          password: str | None = None) -> Peer:
    account = None if username is None else username.removesuffix(".telemetry")
    peer = connect(dynsec.port, username,
                   password if password is not None else PASSWORDS.get(account or ""),
                   client_id)
    opened.append(peer)
    return peer


def test_a_gateway_account_connects_only_under_its_own_client_id(dynsec: DynsecBroker) -> None:
    with peers() as opened:
        assert login(dynsec, opened, "gw-01", "gw-01").accepted
        for other in ("gw-01-b", "gw-02", SERVER, ""):
            peer = login(dynsec, opened, "gw-01", other or "")
            assert not peer.accepted and peer.connack is not None
            assert peer.connack.value == NOT_AUTHORIZED, (other, peer.connack)


@pytest.mark.parametrize("victim", ["gw-01", SERVER, SERVER_TELEMETRY])
def test_a_takeover_is_refused_and_the_victim_keeps_its_session(
    dynsec: DynsecBroker, victim: str
) -> None:
    with peers() as opened:
        server = login(dynsec, opened, SERVER, SERVER)
        target = server if victim == SERVER else login(dynsec, opened, victim, victim)
        # The victim's subscription: the server reads telemetry, a gateway its own config.
        watched = "gridsense/v1/gw-01/config" if victim == "gw-01" else "gridsense/v1/+/telemetry"
        assert not any(code.is_failure for code in target.subscribe(watched))

        intruder = login(dynsec, opened, "gw-02", victim)
        assert not intruder.accepted and intruder.connack is not None
        assert intruder.connack.value == NOT_AUTHORIZED

        # Sent after the attempt: had the broker closed the victim's connection, the
        # DISCONNECT would have reached the victim before this message.
        if victim == "gw-01":
            server.publish("gridsense/v1/gw-01/config", b"after the attempt")
        else:
            sender = login(dynsec, opened, "gw-01", "gw-01")
            sender.publish("gridsense/v1/gw-01/telemetry", b"after the attempt")
        assert target.next_message()[1] == b"after the attempt"
        assert target.disconnects == [] and target.client.is_connected()
    assert dynsec.broker.running


def test_an_account_added_connects_and_revoked_is_disconnected_at_once(
    dynsec: DynsecBroker
) -> None:
    pid = dynsec.broker.proc.pid if dynsec.broker.proc else None
    password = "gw-07-password-secret"
    with peers() as opened:
        assert not login(dynsec, opened, "gw-07", "gw-07", password).accepted
        with dynsec.accounts() as accounts:
            added = accounts.add("gw-07", Role.GATEWAY, password)
            assert added.logins == ("gw-07",)
            live = login(dynsec, opened, "gw-07", "gw-07", password)
            assert live.accepted
            accounts.revoke("gw-07")
            # The plugin closes the revoked account's live connection itself.
            assert "Administrative action" in live.wait_disconnected()
            assert not login(dynsec, opened, "gw-07", "gw-07", password).accepted
            with pytest.raises(AccountError) as missing:
                accounts.revoke("gw-07")
            assert missing.value.kind is AccountErrorKind.NOT_FOUND
    # All of it on the broker that was running before: no restart.
    assert dynsec.broker.running and dynsec.broker.proc and dynsec.broker.proc.pid == pid


def test_a_new_password_refuses_the_old_one_and_closes_live_connections(
    dynsec: DynsecBroker
) -> None:
    new = "gw-01-second-password"
    with peers() as opened:
        live = login(dynsec, opened, "gw-01", "gw-01")
        with dynsec.accounts() as accounts:
            accounts.change("gw-01", password=new)
        assert live.wait_disconnected()
        assert not login(dynsec, opened, "gw-01", "gw-01").accepted
        assert login(dynsec, opened, "gw-01", "gw-01", new).accepted


def test_a_gateway_cannot_publish_or_read_under_another_gateways_prefix(
    dynsec: DynsecBroker
) -> None:
    with peers() as opened:
        server = login(dynsec, opened, SERVER, SERVER)
        assert not any(c.is_failure for c in server.subscribe("gridsense/v1/+/telemetry"))
        gw02 = login(dynsec, opened, "gw-02", "gw-02")
        gw02.publish("gridsense/v1/gw-01/telemetry", b"forged")
        gw02.publish("gridsense/v1/gw-02/telemetry", b"own")
        # Delivery is in order: once the gateway's own message is here, the forged one
        # would have arrived before it.
        assert server.next_message() == ("gridsense/v1/gw-02/telemetry", b"own")
        assert server.messages.empty()
        # Reading: its own config and commands only.
        codes = gw02.subscribe("gridsense/v1/gw-02/config", "gridsense/v1/gw-01/config",
                               "gridsense/v1/+/cmd", "#")
        assert [c.is_failure for c in codes] == [False, True, True, True]
        # The server writes config and cmd, never a gateway's telemetry.
        server.publish("gridsense/v1/gw-02/telemetry", b"server forged")
        server.publish("gridsense/v1/gw-02/config", b"cfg")
        assert gw02.next_message() == ("gridsense/v1/gw-02/config", b"cfg")
        assert server.messages.empty()


def test_a_gateway_may_publish_every_kind_it_sends_and_nothing_else(dynsec: DynsecBroker) -> None:
    with peers() as opened:
        server = login(dynsec, opened, SERVER, SERVER)
        assert not any(c.is_failure for c in server.subscribe("gridsense/v1/#"))
        gw02 = login(dynsec, opened, "gw-02", "gw-02")
        own = [topic_for("gw-02", kind, "01J0000000000000000000000A")
               for kind in sorted(EDGE_PUBLISHED, key=str)]
        for topic in [topic_for("gw-02", Kind.CONFIG), "gridsense/v1/gw-02/other", *own]:
            gw02.publish(topic, b"x")
        # Config and an unknown suffix were dropped; every kind a gateway sends arrived.
        assert [server.next_message()[0] for _ in own] == own
        assert server.messages.empty()


def test_share_groups_are_for_servers_only(dynsec: DynsecBroker) -> None:
    shared = "$share/gridsense-server/gridsense/v1/+/telemetry"
    with peers() as opened:
        server = login(dynsec, opened, SERVER_TELEMETRY, SERVER_TELEMETRY)
        assert not any(c.is_failure for c in server.subscribe(shared))
        gateway = login(dynsec, opened, "gw-01", "gw-01")
        assert [c.value for c in gateway.subscribe(shared)] == [NOT_AUTHORIZED]


@pytest.mark.parametrize(("username", "password"), [(None, None), ("gw-01", "wrong-password")])
def test_anonymous_and_a_wrong_password_are_refused(
    dynsec: DynsecBroker, username: str | None, password: str | None
) -> None:
    with peers() as opened:
        peer = login(dynsec, opened, username, username or "anonymous", password)
        assert not peer.accepted


def test_list_and_role_change(dynsec: DynsecBroker) -> None:
    with dynsec.accounts() as accounts:
        listed = {a.name: a for a in accounts.list()}
        assert listed["gw-01"].role is Role.GATEWAY and listed["gw-01"].logins == ("gw-01",)
        assert listed[SERVER].role is Role.SERVER
        assert listed[SERVER].logins == (SERVER, SERVER_TELEMETRY)
        assert listed[ADMIN].role is None  # the admin is the broker's, not gridsense's
        assert SERVER_TELEMETRY not in listed

        with pytest.raises(AccountError) as exists:
            accounts.add("gw-01", Role.GATEWAY, PASSWORDS["gw-01"])
        assert exists.value.kind is AccountErrorKind.EXISTS
        with pytest.raises(AccountError) as needs_password:
            accounts.change("gw-02", role=Role.SERVER)
        assert needs_password.value.kind is AccountErrorKind.INVALID

        changed = accounts.change(SERVER, role=Role.GATEWAY)
        assert changed.logins == (SERVER,)
        assert {a.name: a for a in accounts.list()}[SERVER].role is Role.GATEWAY
    with peers() as opened:
        # Its telemetry login is gone, and as a gateway it may publish under its own prefix.
        assert not login(dynsec, opened, SERVER_TELEMETRY, SERVER_TELEMETRY).accepted
        gateway = login(dynsec, opened, SERVER, SERVER)
        watcher = login(dynsec, opened, "gw-01", "gw-01")
        assert gateway.accepted and watcher.accepted


@pytest.mark.parametrize("name", ["", "a/b", "gw 01", "#", "x.telemetry", "é"])
def test_bad_account_names_are_refused_before_the_broker_is_asked(
    dynsec: DynsecBroker, name: str
) -> None:
    with dynsec.accounts() as accounts, pytest.raises(AccountError) as refused:
        accounts.add(name, Role.GATEWAY, "a-long-enough-password")
    assert refused.value.kind is AccountErrorKind.INVALID
    assert "账号名" in str(refused.value) and "account name" in str(refused.value)


def test_a_wrong_admin_password_is_said_plainly(dynsec: DynsecBroker) -> None:
    from gridsense_server.broker.mosquitto_dynsec import dynsec_accounts

    with pytest.raises(AccountError) as refused, \
            dynsec_accounts("127.0.0.1", dynsec.port, ADMIN, "not-the-admin-password"):
        pass
    assert refused.value.kind is AccountErrorKind.UNREACHABLE
    assert "refused the admin login" in str(refused.value)


def test_the_state_file_is_written_once_and_never_overwritten(tmp_path: Path) -> None:
    state = tmp_path / "dynamic-security.json"
    assert write_initial_state(state, ADMIN, "first-admin-password")
    first = state.read_text()
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    assert not write_initial_state(state, ADMIN, "second-admin-password")
    assert state.read_text() == first


def test_accounts_and_pins_survive_a_broker_restart(dynsec: DynsecBroker) -> None:
    """The plugin keeps its state file current itself: what was added on the running broker is
    there after a restart, pins included."""
    with dynsec.accounts() as accounts:
        accounts.add("gw-08", Role.GATEWAY, "gw-08-password-secret")
    dynsec.broker.stop()
    dynsec.broker.start()
    with peers() as opened:
        assert login(dynsec, opened, "gw-08", "gw-08", "gw-08-password-secret").accepted
        assert not login(dynsec, opened, "gw-02", "gw-08").accepted


def test_the_same_role_again_restores_the_role_acls(dynsec: DynsecBroker) -> None:
    with dynsec.accounts() as accounts:
        # An ACL list gone stale (an older version's, or edited by hand): nothing allowed.
        accounts.link.request([{"command": "modifyRole", "rolename": "gridsense-gateway:gw-01",
                                "acls": []}])
        with peers() as opened:
            server = login(dynsec, opened, SERVER, SERVER)
            server.subscribe("gridsense/v1/+/health")
            stale = login(dynsec, opened, "gw-01", "gw-01")
            stale.publish("gridsense/v1/gw-01/health", b"dropped")
            accounts.change("gw-01", role=Role.GATEWAY)
            stale.publish("gridsense/v1/gw-01/health", b"allowed")
            assert server.next_message() == ("gridsense/v1/gw-01/health", b"allowed")
