"""What an enrolled gateway keeps: its key, certificate, the CA, its broker password and its
config, each written 0600 (created so: never readable by others, even for a moment)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

KEY, CERT, CA, PASSWORD, CONFIG = "gateway.key", "gateway.crt", "ca.crt", "mqtt.password", \
    "gateway.yaml"


def new_key_and_request() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A P-256 key and a certificate request over it (the server names the subject)."""
    key = ec.generate_private_key(ec.SECP256R1())
    request = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                           "gridsense-gateway")]))
               .sign(key, hashes.SHA256()))
    return key, request.public_bytes(serialization.Encoding.PEM).decode()


def write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def store(state_dir: Path, key: ec.EllipticCurvePrivateKey, answer: dict[str, Any]) -> Path:
    """Write everything the answer holds; the config file's path."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    write_private(state_dir / KEY, key_pem)
    write_private(state_dir / PASSWORD, (answer["password"] + "\n").encode())
    config: dict[str, Any] = dict(answer.get("config") or {})
    gateway = dict(config.get("gateway") or {})
    gateway.update(id=answer["gateway"], state_dir=str(state_dir))
    mqtt = dict(config.get("mqtt") or {})
    mqtt["password_file"] = str(state_dir / PASSWORD)
    if answer.get("ca_pem"):
        write_private(state_dir / CA, answer["ca_pem"].encode())
    if answer.get("broker", {}).get("tls"):
        tls = dict(mqtt.get("tls") or {})
        tls["ca_file"] = str(state_dir / CA)
        if answer.get("cert_pem"):
            write_private(state_dir / CERT, answer["cert_pem"].encode())
            tls.update(cert_file=str(state_dir / CERT), key_file=str(state_dir / KEY))
        mqtt["tls"] = tls
    config.update(gateway=gateway, mqtt=mqtt)
    config.setdefault("devices", [])
    path = state_dir / CONFIG
    write_private(path, yaml.safe_dump(config, allow_unicode=True, sort_keys=False).encode())
    return path
