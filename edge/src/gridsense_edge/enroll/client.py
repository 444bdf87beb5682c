"""The HTTP side of enrolling: fetch the deployment CA and trust it only when its SHA-256 is
the one the installer was given; then send the code and the certificate request over a
connection that trusts that CA alone (for https)."""

from __future__ import annotations

import hashlib
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

CA_PATH = "/api/v1/enroll/ca.crt"
ENROLL_PATH = "/api/v1/enroll"
TIMEOUT_S = 20.0
MAX_ANSWER = 1_000_000  # an answer is a few kB: more is not the server


class FailureKind(StrEnum):
    WRONG_CODE = "wrong"
    USED = "used"
    EXPIRED = "expired"
    INVALIDATED = "invalidated"
    THROTTLED = "throttled"
    FINGERPRINT = "fingerprint_mismatch"
    UNREACHABLE = "unreachable"
    SERVER = "server"  # the server could not finish (broker down, bad request...)


FAILURE_TEXT = {
    FailureKind.WRONG_CODE: "注册码错误，请核对 / the enrollment code is wrong: check it",
    FailureKind.USED: "注册码已被使用，请在管理页面重新生成 / the code has been used: "
                      "ask for a new one",
    FailureKind.EXPIRED: "注册码已过期，请在管理页面重新生成 / the code has expired: "
                         "ask for a new one",
    FailureKind.INVALIDATED: "注册码已作废（已签发新码或网关已吊销）/ the code was replaced "
                             "or the gateway revoked: ask for a new one",
    FailureKind.THROTTLED: "尝试过多，请稍后再试 / too many tries from here: wait and retry",
    FailureKind.FINGERPRINT: "服务器 CA 指纹不符：可能连到了假冒的服务器，已停止 / the "
                             "server's CA fingerprint does not match: stopped (not the real "
                             "server, or a wrong fingerprint)",
    FailureKind.UNREACHABLE: "连不上服务器 / cannot reach the server",
    FailureKind.SERVER: "服务器无法完成注册 / the server could not complete the enrollment",
}


class EnrollFailure(Exception):
    def __init__(self, kind: FailureKind, detail: str = "") -> None:
        super().__init__(f"{FAILURE_TEXT[kind]}{f' ({detail})' if detail else ''}")
        self.kind = kind


URI_SCHEME = "gridsense-enroll:"


def parse_enroll_uri(uri: str) -> tuple[str, str, str | None]:
    """(server, code, fingerprint) from what the QR code carries:
    ``gridsense-enroll:?server=<url>&code=<code>[&ca_sha256=<hex>]``."""
    if not uri.startswith(URI_SCHEME):
        raise ValueError(f"not an enrollment URI (it starts with {URI_SCHEME}): {uri[:40]!r}")
    fields = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)
    server, code = fields.get("server", [""])[0], fields.get("code", [""])[0]
    if not server or not code:
        raise ValueError("the enrollment URI lacks server= or code=")
    return server, code, fields.get("ca_sha256", [None])[0]


def normalize_fingerprint(text: str) -> str:
    cleaned = text.replace(":", "").replace(" ", "").lower()
    if len(cleaned) != 64 or any(c not in "0123456789abcdef" for c in cleaned):
        raise ValueError(f"not a SHA-256 fingerprint: {text!r} (64 hex digits, ':' allowed)")
    return cleaned


def fingerprint_of(ca_pem: str) -> str:
    cert = x509.load_pem_x509_certificate(ca_pem.encode())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


@dataclass(frozen=True, slots=True)
class Server:
    url: str
    fingerprint: str | None  # None: no pinning (only for a server on plain http in a lab)

    def trusted_ca(self) -> str | None:
        """The CA's PEM, fetched and checked against the fingerprint; None without one."""
        if self.fingerprint is None:
            return None
        # The download itself need not be trusted: a CA with this SHA-256 cannot be forged.
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        pem = self._get(CA_PATH, unverified).decode("utf-8", errors="replace")
        try:
            got = fingerprint_of(pem)
        except ValueError as exc:
            raise EnrollFailure(FailureKind.FINGERPRINT, f"no CA certificate: {exc}") from None
        if got != self.fingerprint:
            raise EnrollFailure(FailureKind.FINGERPRINT, f"got {got}")
        return pem

    def enroll(self, code: str, csr_pem: str, ca_pem: str | None) -> dict[str, Any]:
        context = None
        if self.url.startswith("https://"):
            context = ssl.create_default_context(cadata=ca_pem) if ca_pem \
                else ssl.create_default_context()
        body = json.dumps({"code": code, "csr": csr_pem}).encode()
        request = urllib.request.Request(self.url + ENROLL_PATH, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=context) as answer:
                data = json.loads(answer.read(MAX_ANSWER))
        except urllib.error.HTTPError as exc:
            raise _failure(exc) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                # Someone answers with a certificate the pinned CA did not issue: the code is
                # not sent to them (the handshake failed before the request).
                raise EnrollFailure(FailureKind.FINGERPRINT,
                                    f"the server's certificate: {exc.reason}") from None
            raise EnrollFailure(FailureKind.UNREACHABLE, f"{self.url}: {exc}") from None
        except (OSError, ValueError) as exc:
            raise EnrollFailure(FailureKind.UNREACHABLE, f"{self.url}: {exc}") from None
        if self.fingerprint is not None and fingerprint_of(data.get("ca_pem") or "") \
                != self.fingerprint:
            raise EnrollFailure(FailureKind.FINGERPRINT, "in the enrollment answer")
        return data

    def _get(self, path: str, context: ssl.SSLContext) -> bytes:
        try:
            with urllib.request.urlopen(self.url + path, timeout=TIMEOUT_S,
                                        context=context if self.url.startswith("https://")
                                        else None) as answer:
                return answer.read(MAX_ANSWER)
        except urllib.error.HTTPError as exc:
            raise EnrollFailure(FailureKind.SERVER, f"{path}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise EnrollFailure(FailureKind.UNREACHABLE, f"{self.url}: {exc}") from None


def _failure(error: urllib.error.HTTPError) -> EnrollFailure:
    try:
        detail = json.loads(error.read(MAX_ANSWER)).get("detail")
    except (ValueError, OSError):
        detail = None
    kind_text = detail.get("error") if isinstance(detail, dict) else None
    message = detail.get("message", "") if isinstance(detail, dict) else str(detail or "")
    try:
        kind = FailureKind(kind_text)
    except ValueError:
        kind = FailureKind.SERVER
    if kind is FailureKind.SERVER:
        return EnrollFailure(kind, f"HTTP {error.code}: {message}")
    return EnrollFailure(kind)
