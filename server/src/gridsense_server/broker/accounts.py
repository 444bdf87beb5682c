"""Broker accounts: what an account is, the interface every broker implements, its errors.

An account is one identity on the broker with a role. Each of its logins is a username whose
client id is pinned to that same username, so no other account can take a session over:
a gateway has one login (its id); a server process has one per MQTT session it opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from gridsense_protocol.topics import ID_PATTERN, is_valid_id

# The server's telemetry session: its client id (and login) is the events session's plus this.
TELEMETRY_SESSION_SUFFIX = ".telemetry"


class Role(StrEnum):
    GATEWAY = "gateway"  # publishes only under its own prefix, reads only its config and cmd
    SERVER = "server"  # reads every gateway's topics, writes config and cmd


ROLE_TEXT = {Role.GATEWAY: "网关 gateway", Role.SERVER: "服务器 server"}


class AccountErrorKind(StrEnum):
    INVALID = "invalid"  # a name or an argument the interface refuses before asking the broker
    EXISTS = "exists"
    NOT_FOUND = "not_found"
    BROKER_REFUSED = "broker_refused"  # the broker answered the command with an error
    UNREACHABLE = "unreachable"  # no connection, refused login, or no answer in time


class AccountError(Exception):
    """A failed account operation; the message is Chinese first, English second."""

    def __init__(self, kind: AccountErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    role: Role | None  # None: a broker client gridsense does not manage (e.g. the admin)
    logins: tuple[str, ...]  # usernames, each pinned to the client id of the same name
    disabled: bool = False

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "role": self.role.value if self.role else None,
                "logins": list(self.logins), "disabled": self.disabled}


def server_logins(name: str) -> tuple[str, str]:
    """The logins (= client ids) of a server process: its events session, its telemetry one."""
    return name, f"{name}{TELEMETRY_SESSION_SUFFIX}"


def logins_of(name: str, role: Role) -> tuple[str, ...]:
    return server_logins(name) if role is Role.SERVER else (name,)


def check_name(name: str) -> str:
    """Account names end up in topics (gateways) and client ids: the protocol's id rule."""
    if not is_valid_id(name) or name.endswith(TELEMETRY_SESSION_SUFFIX):
        raise AccountError(
            AccountErrorKind.INVALID,
            f"账号名 {name!r} 不合规：须匹配 {ID_PATTERN}，"
            f"且不以 {TELEMETRY_SESSION_SUFFIX} 结尾 / account name {name!r} must match "
            f"{ID_PATTERN} and not end in {TELEMETRY_SESSION_SUFFIX}")
    return name


def check_password(password: str) -> str:
    if len(password) < 12 or password != password.strip():
        raise AccountError(AccountErrorKind.INVALID,
                           "密码至少 12 个字符，且首尾不能有空白 / a password needs at least 12 "
                           "characters and no leading or trailing whitespace")
    return password


class BrokerAccounts(Protocol):
    """Add, change and revoke broker accounts on a running broker, without a restart.

    Every change takes effect at once: a revoked account's live connections are closed, a
    changed password closes them too (they reconnect with the new one or not at all).
    """

    def add(self, name: str, role: Role, password: str) -> Account:
        """Create the account with its ACLs and pinned client ids; EXISTS if it is there."""
        ...

    def change(self, name: str, *, password: str | None = None,
               role: Role | None = None) -> Account:
        """Set a new password and/or role; the account's own role again re-applies its ACLs
        as this version spells them. A role that adds logins (gateway → server) needs the
        password, since the broker keeps only hashes."""
        ...

    def revoke(self, name: str) -> None:
        """Delete the account; its connected clients are disconnected. NOT_FOUND if absent."""
        ...

    def list(self) -> list[Account]:
        ...


def refresh_all(accounts: BrokerAccounts) -> list[Account]:
    """Re-apply every gridsense account's ACLs as this version spells them: after an upgrade
    that gave a role a new topic (a gateway's acknowledgements, say), accounts made by an older
    version lack it until then. Accounts that are not gridsense's (the admin) are left alone."""
    return [accounts.change(account.name, role=account.role)
            for account in accounts.list() if account.role is not None]
