"""Turning a claimed code into a gateway's credentials: its broker account (through the
broker-accounts interface), its client certificate (the deployment CA signs the gateway's own
request), and a starting configuration. Also the broker half of a revocation."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives import serialization
from sqlalchemy.orm import Session, sessionmaker

from ..audit import record
from ..broker import AccountError, AccountErrorKind, BrokerAccounts, Role
from ..broker.mosquitto_dynsec import dynsec_accounts
from ..config import ServerConfig, mqtt_tls_context
from ..pki import CaError, DeploymentCA
from .store import EnrollmentStore

AccountsOpener = Callable[[], AbstractContextManager[BrokerAccounts]]


class EnrollErrorKind(StrEnum):
    NOT_CONFIGURED = "not_configured"  # no broker admin password file, or no CA for TLS
    BAD_REQUEST = "bad_request"  # the certificate request
    BROKER = "broker"  # the broker refused or could not be reached


class EnrollError(Exception):
    def __init__(self, kind: EnrollErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Enrolled:
    gateway_id: str
    answer: dict[str, Any]  # what the gateway receives (holds its password: never logged)
    cert_serial: str | None


def broker_opener(config: ServerConfig) -> AccountsOpener | None:
    """An admin session on the server's own broker, or None without an admin password file.
    The file is read at each use, so rotating the admin's password needs no restart."""
    broker, mqtt = config.broker, config.mqtt
    password_file = broker.admin_password_file
    if password_file is None:
        return None

    @contextlib.contextmanager
    def open_accounts() -> Iterator[BrokerAccounts]:
        try:
            password = password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise EnrollError(EnrollErrorKind.NOT_CONFIGURED,
                              f"读不到代理管理员密码文件 / cannot read "
                              f"broker.admin_password_file {password_file}: {exc}") from None
        tls = None if mqtt.tls is None else mqtt_tls_context(mqtt.tls)
        with dynsec_accounts(mqtt.host, mqtt.port, broker.admin, password, tls=tls) as accounts:
            yield accounts

    return open_accounts


class Enroller:
    def __init__(self, config: ServerConfig, factory: sessionmaker[Session],
                 store: EnrollmentStore, accounts: AccountsOpener | None,
                 ca: DeploymentCA | None) -> None:
        self.config = config
        self._factory = factory
        self.store = store
        self._accounts = accounts
        self.ca = ca

    @classmethod
    def from_config(cls, config: ServerConfig, factory: sessionmaker[Session]) -> Enroller:
        settings = config.enrollment
        ca = None
        if settings.ca_dir is not None:
            try:
                ca = DeploymentCA.open(settings.ca_dir)
            except CaError as exc:
                raise EnrollError(EnrollErrorKind.NOT_CONFIGURED,
                                  f"enrollment.ca_dir: {exc}") from None
        return cls(config, factory, EnrollmentStore(factory, settings.code_ttl_s),
                   broker_opener(config), ca)

    @property
    def server_url(self) -> str:
        return self.config.enrollment.server_url or self.config.lifecycle.public_url

    @property
    def ca_fingerprint(self) -> str | None:
        return None if self.ca is None else self.ca.fingerprint

    def enroll_uri(self, code: str) -> str:
        """What the QR code carries: enough for ``gridsense-edge enroll`` to find the server and
        to trust it on first contact."""
        uri = f"gridsense-enroll:?server={quote(self.server_url, safe='')}&code={code}"
        return uri + (f"&ca_sha256={self.ca_fingerprint}" if self.ca_fingerprint else "")

    def enroll(self, code: str, request_pem: str | None, address: str) -> Enrolled:
        """Claim the code and issue everything; a failure after the claim gives it back.
        Raises store.Refused or EnrollError. Blocking."""
        if self._accounts is None:
            raise EnrollError(EnrollErrorKind.NOT_CONFIGURED,
                              "服务器未配置代理管理员 / the server has no "
                              "broker.admin_password_file: it cannot make broker accounts")
        gateway_id = self.store.claim(code)
        try:
            cert_pem, serial = self._certificate(gateway_id, request_pem)
            password = secrets.token_urlsafe(24)
            self._account(gateway_id, password)
        except BaseException:
            self.store.release(code)
            raise
        with self._factory.begin() as session:
            self.store.enrolled(session, gateway_id, serial)
            record(session, f"gateway:{gateway_id}", "gateway.enroll", gateway_id,
                   {"cert_serial": serial, "tls": self.config.enrollment.broker_tls}, address)
        return Enrolled(gateway_id, self._answer(gateway_id, password, cert_pem), serial)

    def revoke_account(self, gateway_id: str) -> bool:
        """Delete the gateway's broker account (its live connection is closed by the broker);
        False when it had none."""
        if self._accounts is None:
            raise EnrollError(EnrollErrorKind.NOT_CONFIGURED,
                              "服务器未配置代理管理员 / no broker.admin_password_file")
        try:
            with self._accounts() as accounts:
                accounts.revoke(gateway_id)
        except AccountError as exc:
            if exc.kind is AccountErrorKind.NOT_FOUND:
                return False
            raise EnrollError(EnrollErrorKind.BROKER, str(exc)) from None
        return True

    def _certificate(self, gateway_id: str, request_pem: str | None
                     ) -> tuple[str | None, str | None]:
        if not self.config.enrollment.broker_tls:
            return None, None
        assert self.ca is not None  # the config's validator requires ca_dir with broker_tls
        if not request_pem:
            raise EnrollError(EnrollErrorKind.BAD_REQUEST,
                              "缺少证书请求 / the broker uses TLS: send a certificate "
                              "request (csr)")
        try:
            cert = self.ca.sign_client_request(gateway_id, request_pem.encode(),
                                               days=self.config.enrollment.cert_days)
        except CaError as exc:
            raise EnrollError(EnrollErrorKind.BAD_REQUEST, f"证书请求无效 / csr: {exc}") from None
        return cert.public_bytes(serialization.Encoding.PEM).decode(), f"{cert.serial_number:x}"

    def _account(self, gateway_id: str, password: str) -> None:
        assert self._accounts is not None
        try:
            with self._accounts() as accounts:
                try:
                    accounts.add(gateway_id, Role.GATEWAY, password)
                except AccountError as exc:
                    if exc.kind is not AccountErrorKind.EXISTS:
                        raise
                    # Re-enrolled without a revocation (a replaced SD card): new password,
                    # which also closes whatever was connected with the old one.
                    accounts.change(gateway_id, password=password, role=Role.GATEWAY)
        except AccountError as exc:
            raise EnrollError(EnrollErrorKind.BROKER, str(exc)) from None

    def _answer(self, gateway_id: str, password: str, cert_pem: str | None) -> dict[str, Any]:
        settings, mqtt = self.config.enrollment, self.config.mqtt
        host = settings.broker_host or mqtt.host
        port = settings.broker_port or mqtt.port
        broker: dict[str, Any] = {"host": host, "port": port, "tls": settings.broker_tls,
                                  "server_name": settings.broker_server_name}
        mqtt_section: dict[str, Any] = {"host": host, "port": port}
        if settings.broker_tls and settings.broker_server_name:
            mqtt_section["tls"] = {"server_name": settings.broker_server_name}
        ca_pem = None if self.ca is None else self.ca.cert.public_bytes(
            serialization.Encoding.PEM).decode()
        return {"gateway": gateway_id, "broker": broker, "username": gateway_id,
                "client_id": gateway_id, "password": password, "cert_pem": cert_pem,
                "ca_pem": ca_pem, "ca_sha256": self.ca_fingerprint,
                "config": {"gateway": {"id": gateway_id}, "mqtt": mqtt_section, "devices": []}}
