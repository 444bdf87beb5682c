"""One folder holds the CA (``ca.key``, 0600, and ``ca.crt``) and what it issued (``issued/``):
server certificates for DNS names and addresses, client certificates whose CN is the client's
name (a gateway id). Nothing here is MQTT- or HTTP-specific.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gridsense_protocol.tls import TlsFileError, check_private_file

from ..secure_files import write_private

CA_KEY, CA_CERT, ISSUED = "ca.key", "ca.crt", "issued"
CA_DAYS = 3650
LEAF_DAYS = 825  # what browsers still accept for a server certificate
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")  # a file name as well as a CN
_BACKDATE = timedelta(minutes=5)  # a peer whose clock is a little behind still accepts it


class CaError(Exception):
    """The CA folder or a request cannot be used; the message names the file or the field."""


@dataclass(frozen=True)
class Issued:
    name: str
    cert_file: Path
    key_file: Path
    subject: str
    serial: int
    not_before: datetime
    not_after: datetime
    dns: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "cert_file": str(self.cert_file),
                "key_file": str(self.key_file), "subject": self.subject,
                "serial": f"{self.serial:x}", "not_before": self.not_before.isoformat(),
                "not_after": self.not_after.isoformat(), "dns": list(self.dns),
                "ips": list(self.ips)}


class DeploymentCA:
    def __init__(self, directory: Path, key: ec.EllipticCurvePrivateKey,
                 cert: x509.Certificate) -> None:
        self.directory = directory
        self._key = key
        self.cert = cert

    @property
    def cert_file(self) -> Path:
        return self.directory / CA_CERT

    @property
    def key_file(self) -> Path:
        return self.directory / CA_KEY

    @classmethod
    def init(cls, directory: Path, *, common_name: str = "gridsense deployment CA",
             days: int = CA_DAYS) -> tuple[DeploymentCA, bool]:
        """Open the CA in ``directory``, creating it if there is none; True when created."""
        if (directory / CA_KEY).exists() or (directory / CA_CERT).exists():
            return cls.open(directory), False
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_key(directory / CA_KEY, key)
        _write_public(directory / CA_CERT, cert.public_bytes(serialization.Encoding.PEM))
        return cls(directory, key, cert), True

    @classmethod
    def open(cls, directory: Path) -> DeploymentCA:
        key_file, cert_file = directory / CA_KEY, directory / CA_CERT
        for path in (key_file, cert_file):
            if not path.is_file():
                raise CaError(f"{path} does not exist (create the CA: gridsense-server ca init "
                              f"--dir {directory})")
        try:
            check_private_file(key_file)
        except TlsFileError as exc:
            raise CaError(str(exc)) from None
        try:
            key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        except ValueError as exc:
            raise CaError(f"{directory}: not a CA key and certificate in PEM ({exc})") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CaError(f"{key_file}: not an EC key (this CA signs with P-256)")
        return cls(directory, key, cert)

    def issue_server(self, name: str, *, dns: list[str], ips: list[str],
                     days: int = LEAF_DAYS, not_after: datetime | None = None) -> Issued:
        """A server certificate for ``dns`` names and ``ips`` (its subject alternative names,
        which is what TLS clients check)."""
        if not dns and not ips:
            raise CaError("a server certificate needs at least one DNS name or IP address")
        try:
            addresses = [ipaddress.ip_address(ip) for ip in ips]
        except ValueError as exc:
            raise CaError(f"not an IP address: {exc}") from None
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        sans += [x509.IPAddress(a) for a in addresses]
        return self._issue(name, sans, ExtendedKeyUsageOID.SERVER_AUTH, days, not_after,
                           tuple(dns), tuple(str(a) for a in addresses))

    def issue_client(self, name: str, *, days: int = LEAF_DAYS,
                     not_after: datetime | None = None) -> Issued:
        """A client certificate whose CN is ``name`` (a gateway id)."""
        return self._issue(name, [], ExtendedKeyUsageOID.CLIENT_AUTH, days, not_after, (), ())

    def issued(self) -> list[Issued]:
        folder = self.directory / ISSUED
        return [self._describe(path) for path in sorted(folder.glob("*.crt"))]

    def to_json(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "cert_file": str(self.cert_file),
                "subject": self.cert.subject.rfc4514_string(),
                "not_after": self.cert.not_valid_after_utc.isoformat(),
                "sha256": self.cert.fingerprint(hashes.SHA256()).hex(":"),
                "issued": [i.to_json() for i in self.issued()]}

    def _issue(self, name: str, sans: list[x509.GeneralName], usage: x509.ObjectIdentifier,
               days: int, not_after: datetime | None, dns: tuple[str, ...],
               ips: tuple[str, ...]) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._leaf(name, key.public_key(), sans, usage, days, not_after)
        folder = self.directory / ISSUED
        folder.mkdir(exist_ok=True)
        key_file, cert_file = folder / f"{name}.key", folder / f"{name}.crt"
        _write_key(key_file, key)
        # 0600 like its key: the pair is one machine's identity and goes where the key goes
        # (the CA's own certificate stays 0644: it is meant to be handed out).
        write_private(cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o600)
        return Issued(name, cert_file, key_file, cert.subject.rfc4514_string(),
                      cert.serial_number, cert.not_valid_before_utc, cert.not_valid_after_utc,
                      dns, ips)

    def sign_client_request(self, name: str, request_pem: bytes, *,
                            days: int = LEAF_DAYS) -> x509.Certificate:
        """A client certificate whose CN is ``name`` over the key of a certificate request:
        the requester (a gateway) keeps its private key. The request's own subject is ignored,
        so a gateway cannot ask for another's name."""
        try:
            request = x509.load_pem_x509_csr(request_pem)
        except ValueError as exc:
            raise CaError(f"not a PEM certificate request: {exc}") from None
        if not request.is_signature_valid:
            raise CaError("the certificate request's signature does not verify")
        key = request.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise CaError("the certificate request's key must be EC or RSA")
        cert = self._leaf(name, key, [], ExtendedKeyUsageOID.CLIENT_AUTH, days, None)
        folder = self.directory / ISSUED
        folder.mkdir(exist_ok=True)
        _write_public(folder / f"{name}.crt", cert.public_bytes(serialization.Encoding.PEM))
        return cert

    @property
    def fingerprint(self) -> str:
        """The CA certificate's SHA-256, lower-case hex without separators."""
        return self.cert.fingerprint(hashes.SHA256()).hex()

    def _leaf(self, name: str, public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
              sans: list[x509.GeneralName], usage: x509.ObjectIdentifier, days: int,
              not_after: datetime | None) -> x509.Certificate:
        if not _NAME.match(name):
            raise CaError(f"name {name!r}: 1-64 letters, digits, '_', '.' or '-'")
        now = datetime.now(UTC)
        until = not_after or now + timedelta(days=days)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(min(now, until) - _BACKDATE).not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self._key.public_key()), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(self._key, hashes.SHA256())

    def _describe(self, cert_file: Path) -> Issued:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        dns: list[str] = []
        ips: list[str] = []
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            pass
        else:
            dns = san.get_values_for_type(x509.DNSName)
            ips = [str(a) for a in san.get_values_for_type(x509.IPAddress)]
        return Issued(cert_file.stem, cert_file, cert_file.with_suffix(".key"),
                      cert.subject.rfc4514_string(), cert.serial_number,
                      cert.not_valid_before_utc, cert.not_valid_after_utc, tuple(dns), tuple(ips))


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    write_private(path, data, 0o600)  # created 0600: never readable by others, even briefly


def _write_public(path: Path, data: bytes) -> None:
    write_private(path, data, 0o644)

