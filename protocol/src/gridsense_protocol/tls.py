"""TLS for MQTT clients, shared by the gateway and the server: a client context built from a CA
file (and an optional certificate and key), always checking the broker's name, and a plain
reading of why a handshake failed (wrong CA, expired, name mismatch) naming the file at fault.
The one module of this package that reads files.
"""

from __future__ import annotations

import contextlib
import ssl
import stat
from pathlib import Path
from typing import Any

_NOT_NAMED = ("the broker's certificate does not name {name!r} (issue one that does, or set "
              "server_name to a name it carries)")
# OpenSSL's X509_V_ERR_* codes a gateway installer meets, with what to do about each.
_VERIFY_CODES = {
    9: "the broker's certificate is not valid yet (check this machine's clock)",
    10: "the broker's certificate has expired; issue a new one",
    18: "the broker's certificate is self-signed and not the CA in {ca}",
    19: "the broker's certificate chain ends at a CA other than the one in {ca}",
    20: "the broker's certificate was not issued by the CA in {ca}",
    21: "the broker's certificate was not issued by the CA in {ca}",
    62: _NOT_NAMED,  # host name mismatch
    64: _NOT_NAMED,  # IP address mismatch
}
# Alerts the broker sends back about our own certificate (require_certificate listeners).
_ALERTS = {
    "CERTIFICATE_EXPIRED": "the broker refused our certificate {cert}: it has expired",
    "CERTIFICATE_REQUIRED": "the broker requires a client certificate (set cert_file, key_file)",
    "CERTIFICATE_REVOKED": "the broker refused our certificate {cert}: it was revoked",
    "UNKNOWN_CA": "the broker does not trust the CA that issued our certificate {cert}",
    "BAD_CERTIFICATE": "the broker refused our certificate {cert}",
    "HANDSHAKE_FAILURE": "the broker refused the handshake (no common protocol or cipher)",
}


class TlsFileError(ValueError):
    """A CA, certificate or key file that cannot be used; the message names the file."""


def check_private_file(path: Path) -> None:
    """Refuse a private key that others can read: it would no longer identify this machine."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise TlsFileError(f"{path}: cannot read the key ({exc.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise TlsFileError(f"{path} is readable by group or others (mode {oct(mode & 0o777)}); "
                           f"run: chmod 600 {path}")


class ClientTls(ssl.SSLContext):
    """A TLS client context that checks ``server_name`` (default: the host connected to) and
    keeps the last TLS failure (a failed handshake, or the broker's alert about our certificate),
    which paho's connect thread does not pass on."""

    ca_file: Path
    cert_file: Path | None
    server_name: str | None
    last_failure: ssl.SSLError | None
    last_host: str | None

    def wrap_socket(self, sock: Any, *args: Any, server_hostname: str | None = None,
                    **kwargs: Any) -> ssl.SSLSocket:
        self.last_host = self.server_name or server_hostname
        return super().wrap_socket(sock, *args, server_hostname=self.last_host, **kwargs)

    def describe(self, exc: BaseException) -> str:
        """Why a connection failed, in words naming the file to look at."""
        return describe_failure(exc, self.ca_file, self.cert_file, self.last_host)

    def take_failure(self) -> ssl.SSLError | None:
        failure, self.last_failure = self.last_failure, None
        return failure


class _RecordingSocket(ssl.SSLSocket):
    # Under TLS 1.3 the broker judges our certificate after our handshake is done: its alert
    # (expired, unknown CA) arrives on the first read, which paho reports only as a lost link.
    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            self._record(exc)
            raise

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        try:
            return super().recv(buflen, flags)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            if "ALERT" in str(exc.reason or ""):  # not a plain EOF: a broker restart is no alert
                self._record(exc)
            raise

    def send(self, data: Any, flags: int = 0) -> int:
        try:
            return super().send(data, flags)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError:
            # Our write may fail first (the broker closed after its alert): read the alert.
            with contextlib.suppress(OSError, ValueError):
                self.recv(1)
            raise

    def _record(self, exc: ssl.SSLError) -> None:
        context = self.context
        if isinstance(context, ClientTls):
            context.last_failure = exc


def client_context(ca_file: Path, cert_file: Path | None = None, key_file: Path | None = None,
                   server_name: str | None = None) -> ClientTls:
    """A verifying client context; raises TlsFileError naming the file that cannot be used."""
    if (cert_file is None) != (key_file is None):
        raise TlsFileError("cert_file and key_file go together (a client certificate needs "
                           "its key)")
    context = ClientTls(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the name
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.sslsocket_class = _RecordingSocket
    context.ca_file, context.cert_file, context.server_name = ca_file, cert_file, server_name
    context.last_failure = context.last_host = None
    try:
        context.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise TlsFileError(f"{ca_file}: not a readable CA certificate file ({_why(exc)})") from None
    if cert_file is not None and key_file is not None:
        check_private_file(key_file)
        try:
            context.load_cert_chain(str(cert_file), str(key_file))
        except (OSError, ssl.SSLError) as exc:
            raise TlsFileError(f"{cert_file} with key {key_file}: cannot be used as the client "
                               f"certificate ({_why(exc)})") from None
    return context


def describe_failure(exc: BaseException, ca_file: Path, cert_file: Path | None,
                     host: str | None) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        template = _VERIFY_CODES.get(exc.verify_code)
        if template is not None:
            return template.format(ca=ca_file, name=host)
        return f"the broker's certificate failed verification against {ca_file}: " \
               f"{exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        reason = str(exc.reason or "")
        for alert, template in _ALERTS.items():
            if reason.endswith(alert):
                return template.format(cert=cert_file)
        return f"TLS failed: {_why(exc)}"
    return f"connection failed: {exc!r}"


def _why(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
