"""Broker accounts and ACLs: one interface (``accounts.BrokerAccounts``), Mosquitto's
dynamic-security plugin behind it, and the ``broker`` CLI."""

from .accounts import (
    TELEMETRY_SESSION_SUFFIX,
    Account,
    AccountError,
    AccountErrorKind,
    BrokerAccounts,
    Role,
    server_logins,
)

__all__ = [
    "TELEMETRY_SESSION_SUFFIX",
    "Account",
    "AccountError",
    "AccountErrorKind",
    "BrokerAccounts",
    "Role",
    "server_logins",
]
