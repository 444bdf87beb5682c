"""``BrokerAccounts`` on Mosquitto's dynamic-security plugin, over its control topic.

Mapping: every login is a dynsec client whose ``clientid`` is pinned to its username (the
plugin then refuses the login under any other client id, before the broker looks for a
session to take over). Servers share the role ``gridsense-server``; each gateway has a role of
its own holding its literal topics (no %u substitution in 2.0's dynsec ACLs).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from gridsense_protocol.tls import ClientTls

from .accounts import (
    TELEMETRY_SESSION_SUFFIX,
    Account,
    AccountError,
    AccountErrorKind,
    Role,
    check_name,
    check_password,
    logins_of,
)
from .acl import Action, TopicRule, rules_for
from .dynsec_link import DynsecLink

SERVER_ROLE = "gridsense-server"
GATEWAY_ROLE_PREFIX = "gridsense-gateway:"
_ACL_TYPES = {Action.PUBLISH: "publishClientSend", Action.SUBSCRIBE: "subscribePattern"}
_TEXT_NAME = {Role.GATEWAY: "gridsense gateway", Role.SERVER: "gridsense server"}
# The plugin's error strings (2.0.11) for the two cases callers act on.
_EXISTS = ("Client already exists", "Role already exists")
_NOT_FOUND = ("Client not found", "Role not found")


class CommandLink(Protocol):
    def request(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]: ...


def role_name(name: str, role: Role) -> str:
    return SERVER_ROLE if role is Role.SERVER else f"{GATEWAY_ROLE_PREFIX}{name}"


def role_of(rolenames: list[str]) -> Role | None:
    if SERVER_ROLE in rolenames:
        return Role.SERVER
    if any(r.startswith(GATEWAY_ROLE_PREFIX) for r in rolenames):
        return Role.GATEWAY
    return None


def dynsec_acls(rules: list[TopicRule]) -> list[dict[str, Any]]:
    return [{"acltype": _ACL_TYPES[rule.action], "topic": rule.topic, "allow": True}
            for rule in rules]


class MosquittoDynsecAccounts:
    """Accounts through a ``DynsecLink`` (or anything that answers dynsec commands)."""

    def __init__(self, link: CommandLink) -> None:
        self.link = link

    # -- the BrokerAccounts interface ------------------------------------------------------------

    def add(self, name: str, role: Role, password: str) -> Account:
        check_name(name)
        check_password(password)
        if self._get(name) is not None or self._client(name + TELEMETRY_SESSION_SUFFIX):
            raise AccountError(AccountErrorKind.EXISTS,
                               f"账号 {name} 已存在 / account {name} already exists")
        self._put_role(name, role)
        created: list[str] = []
        try:
            for login in logins_of(name, role):
                self._run({"command": "createClient", "username": login, "password": password,
                           "clientid": login, "textname": _TEXT_NAME[role],
                           "roles": [{"rolename": role_name(name, role)}]})
                created.append(login)
        except AccountError:
            for login in created:  # leave no half account behind
                self._run({"command": "deleteClient", "username": login}, missing_ok=True)
            raise
        return Account(name, role, logins_of(name, role))

    def change(self, name: str, *, password: str | None = None,
               role: Role | None = None) -> Account:
        if password is not None:
            check_password(password)
        current = self._require(name)
        if role is not None and role is not current.role:
            current = self._change_role(current, role, password)
        elif role is not None:
            self._put_role(name, role)  # the same role: bring its ACLs to this version's
        if password is not None:
            # The plugin disconnects a login's live clients when its password changes.
            for login in current.logins:
                self._run({"command": "setClientPassword", "username": login,
                           "password": password})
        return current

    def revoke(self, name: str) -> None:
        account = self._require(name)
        for login in account.logins:
            # Deleting a client disconnects every device logged in with it, at once.
            self._run({"command": "deleteClient", "username": login})
        if account.role is Role.GATEWAY:
            self._run({"command": "deleteRole", "rolename": role_name(name, Role.GATEWAY)},
                      missing_ok=True)

    def list(self) -> list[Account]:
        answer = self._run({"command": "listClients", "verbose": True})
        clients = answer.get("data", {}).get("clients", [])
        return self._group([self._from_client(c) for c in clients])

    # -- helpers -----------------------------------------------------------------------------

    def _change_role(self, current: Account, role: Role, password: str | None) -> Account:
        name = current.name
        wanted = logins_of(name, role)
        missing = [login for login in wanted if login not in current.logins]
        if missing and password is None:
            raise AccountError(AccountErrorKind.INVALID,
                               f"改为 {role.value} 需要新密码（代理只存哈希）/ changing {name} to "
                               f"{role.value} needs a new password (the broker keeps hashes only)")
        self._put_role(name, role)
        grant = [{"rolename": role_name(name, role)}]
        for login in current.logins:
            if login in wanted:
                self._run({"command": "modifyClient", "username": login, "roles": grant})
            else:
                self._run({"command": "deleteClient", "username": login})
        for login in missing:
            self._run({"command": "createClient", "username": login, "password": password,
                       "clientid": login, "textname": _TEXT_NAME[role], "roles": grant})
        if current.role is Role.GATEWAY:
            self._run({"command": "deleteRole", "rolename": role_name(name, Role.GATEWAY)},
                      missing_ok=True)
        return Account(name, role, wanted)

    def _put_role(self, name: str, role: Role) -> None:
        """Create the role, or bring an existing one's ACLs to what this version says."""
        rolename, acls = role_name(name, role), dynsec_acls(rules_for(name, role))
        answer = self._run({"command": "createRole", "rolename": rolename, "acls": acls},
                           exists_ok=True)
        if "error" in answer:
            self._run({"command": "modifyRole", "rolename": rolename, "acls": acls})

    def _require(self, name: str) -> Account:
        check_name(name)
        account = self._get(name)
        if account is None:
            raise AccountError(AccountErrorKind.NOT_FOUND,
                               f"没有账号 {name} / no account {name}")
        return account

    def _get(self, name: str) -> Account | None:
        client = self._client(name)
        if client is None:
            return None
        account = self._from_client(client)
        telemetry = name + TELEMETRY_SESSION_SUFFIX
        if account.role is Role.SERVER and self._client(telemetry) is not None:
            account = Account(name, Role.SERVER, (name, telemetry), account.disabled)
        return account

    def _client(self, username: str) -> dict[str, Any] | None:
        answer = self._run({"command": "getClient", "username": username}, missing_ok=True)
        return answer.get("data", {}).get("client") if "error" not in answer else None

    @staticmethod
    def _from_client(client: dict[str, Any]) -> Account:
        roles = [r.get("rolename", "") for r in client.get("roles", [])]
        return Account(client["username"], role_of(roles), (client["username"],),
                       bool(client.get("disabled", False)))

    @staticmethod
    def _group(logins: list[Account]) -> list[Account]:
        """A server's telemetry login joins its account; everything else is its own."""
        by_name = {a.name: a for a in logins}
        accounts: dict[str, Account] = {}
        for login in logins:
            base = login.name.removesuffix(TELEMETRY_SESSION_SUFFIX)
            owner = by_name.get(base)
            if base != login.name and owner is not None and owner.role is Role.SERVER:
                owner = accounts.get(base, owner)
                accounts[base] = Account(base, owner.role, (*owner.logins, login.name),
                                         owner.disabled)
            else:
                accounts.setdefault(login.name, login)
        return sorted(accounts.values(), key=lambda a: a.name)

    def _run(self, command: dict[str, Any], *, missing_ok: bool = False,
             exists_ok: bool = False) -> dict[str, Any]:
        answer = self.link.request([command])[0]
        error = answer.get("error")
        if error is None:
            return answer
        what = f"{command['command']} {command.get('username') or command.get('rolename', '')}"
        if error in _NOT_FOUND:
            if missing_ok:
                return answer
            raise AccountError(AccountErrorKind.NOT_FOUND, f"不存在 / not found: {what}: {error}")
        if error in _EXISTS:
            if exists_ok:
                return answer
            raise AccountError(AccountErrorKind.EXISTS, f"已存在 / exists: {what}: {error}")
        raise AccountError(AccountErrorKind.BROKER_REFUSED,
                           f"代理拒绝 / the broker refused {what}: {error}")


@contextmanager
def dynsec_accounts(host: str, port: int, admin: str, password: str, *,
                    tls: ClientTls | None = None,
                    timeout_s: float = 10.0) -> Iterator[MosquittoDynsecAccounts]:
    """The accounts of the broker at host:port, through one admin session."""
    with DynsecLink(host, port, admin, password, tls=tls, timeout_s=timeout_s) as link:
        yield MosquittoDynsecAccounts(link)
