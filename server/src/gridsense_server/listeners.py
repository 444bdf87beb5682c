"""The server's HTTP listeners: the main one (HTTPS when ``http.tls`` is set), an optional plain
one that only redirects to HTTPS and hands out the CA certificate, and an optional local-only
one (127.0.0.1) that serves /healthz with its details.

The certificate is the operator's, or one issued from the deployment CA on first start, so the
demo and a small estate need no other tool; its key is refused when others can read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import Response

from .config import HttpConfig, HttpTlsConfig
from .logs import kv
from .pki.ca import CaError, DeploymentCA
from .secure_files import FileProblem, InsecureFileError, check_private, warn_if_exposed

log = logging.getLogger(__name__)

CA_DOWNLOAD_PATH = "/ca.crt"
CA_MEDIA_TYPE = "application/x-x509-ca-cert"  # what Android and iOS offer to install
_HOST = re.compile(r"^[A-Za-z0-9.\-]{1,253}$|^\[[0-9A-Fa-f:.]{2,45}\]$")


class HttpsSetupError(FileProblem):
    """The certificate or key for HTTPS cannot be used; the message names the file."""


@dataclass(frozen=True)
class TlsFiles:
    cert_file: Path
    key_file: Path
    ca_file: Path | None  # the deployment CA's certificate, offered at /ca.crt


def tls_files(tls: HttpTlsConfig) -> TlsFiles:
    """The certificate and key to serve, issuing them from the CA on first start; checked:
    the key readable by its owner only, the pair loadable."""
    if tls.ca_dir is not None:
        files = _from_ca(tls.ca_dir, tls.issue_as, tls.names)
    else:
        assert tls.cert_file is not None and tls.key_file is not None
        files = TlsFiles(tls.cert_file, tls.key_file, None)
    try:
        check_private(files.key_file)
    except InsecureFileError as exc:
        raise HttpsSetupError(f"http.tls key: {exc}") from None
    warn_if_exposed(files.cert_file, "the HTTPS certificate")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(files.cert_file, files.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise HttpsSetupError(f"{files.cert_file} / {files.key_file}: not a usable certificate "
                              f"and key for HTTPS ({exc})") from None
    return files


def _from_ca(ca_dir: Path, name: str, names: list[str]) -> TlsFiles:
    try:
        ca, created = DeploymentCA.init(ca_dir)
        cert_file = ca_dir / "issued" / f"{name}.crt"
        key_file = cert_file.with_suffix(".key")
        dns, ips = split_names(names)
        if created or not _covers(ca, cert_file, key_file, dns, ips):
            issued = ca.issue_server(name, dns=dns, ips=ips)
            log.info(kv("https_certificate_issued", cert=str(issued.cert_file),
                        names=",".join(names), until=issued.not_after.date().isoformat()))
    except CaError as exc:
        raise HttpsSetupError(f"http.tls.ca_dir: {exc}") from None
    return TlsFiles(cert_file, key_file, ca.cert_file)


def _covers(ca: DeploymentCA, cert_file: Path, key_file: Path, dns: list[str],
            ips: list[str]) -> bool:
    """True when the certificate issued before is there, names every name asked for now and
    has more than a month left; otherwise it is issued again (same key file name)."""
    if not (cert_file.is_file() and key_file.is_file()):
        return False
    try:
        issued = next(i for i in ca.issued() if i.cert_file == cert_file)
    except StopIteration:
        return False
    fresh = issued.not_after - datetime.now(UTC) > timedelta(days=30)
    return fresh and set(dns) <= set(issued.dns) and set(ips) <= set(issued.ips)


def split_names(names: list[str]) -> tuple[list[str], list[str]]:
    """DNS names and IP addresses, as a certificate's subject alternative names want them."""
    dns: list[str] = []
    ips: list[str] = []
    for name in names:
        try:
            ips.append(str(ipaddress.ip_address(name)))
        except ValueError:
            dns.append(name)
    return dns, ips


class RedirectToHttps:
    """The plain-HTTP listener: /ca.crt (so a phone can install the CA before it trusts the
    HTTPS page), every other request a 308 to the same path over HTTPS."""

    def __init__(self, https_port: int, ca_pem: bytes | None) -> None:
        self.https_port = https_port
        self.ca_pem = ca_pem

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        if scope["path"] == CA_DOWNLOAD_PATH and self.ca_pem is not None:
            await _answer(send, 200, self.ca_pem, CA_MEDIA_TYPE)
            return
        host = _host_of(scope)
        if host is None:
            await _answer(send, 400, b"bad Host header\n", "text/plain")
            return
        port = "" if self.https_port == 443 else f":{self.https_port}"
        target = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        location = f"https://{host}{port}".encode() + target + (b"?" + query if query else b"")
        await _answer(send, 308, b"", "text/plain", [(b"location", location)])


def _host_of(scope: Any) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"host":
            text = value.decode("latin-1")
            host = text.rsplit(":", 1)[0] if not text.endswith("]") else text
            return host if _HOST.match(host) else None
    server = scope.get("server")
    return server[0] if server else None


async def _answer(send: Any, code: int, body: bytes, media_type: str,
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode()),
               (b"x-content-type-options", b"nosniff"), *(extra or [])]
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: this process decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def uvicorn_config(app: Any, http: HttpConfig, *, host: str, port: int,
                   tls: TlsFiles | None = None) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="off",
        ssl_certfile=tls.cert_file if tls else None, ssl_keyfile=tls.key_file if tls else None,
        # Only a proxy we were told about may say who the client is and that it used HTTPS;
        # uvicorn's default would believe any loopback peer.
        proxy_headers=bool(http.forwarded_allow_ips),
        forwarded_allow_ips=http.forwarded_allow_ips or None,
        # Clients send small JSON on the stream: the same bound as a request body.
        ws_max_size=http.max_body_kb * 1024,
        # No permessage-deflate: incident JSON is small, and a compressor per connection
        # costs ~0.1 ms of the event loop per message and up to ~256 KB of zlib state per
        # connected phone (thousands of staff online at once).
        ws_per_message_deflate=False,
    )


def bound_port(server: uvicorn.Server) -> int:
    return int(server.servers[0].sockets[0].getsockname()[1])


async def start_listener(listeners: list[tuple[uvicorn.Server, asyncio.Task[None]]],
                         name: str, config: uvicorn.Config, *, reuse_port: bool = False) -> int:
    """Start one uvicorn listener and wait until it is bound; its port. ``reuse_port``: bound
    with SO_REUSEPORT, so the kernel shares the port among several server processes."""
    server = EmbeddedUvicorn(config)
    sockets = [shared_socket(config.host, config.port)] if reuse_port else None
    serving = asyncio.create_task(_serve_http(server, sockets), name=name)
    listeners.append((server, serving))
    while not server.started:
        if serving.done():
            raise RuntimeError(
                f"{name} listener did not start on {config.host}:{config.port} "
                f"(is the port in use? {serving.exception()})")
        await asyncio.sleep(0.05)
    return bound_port(server)


def shared_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound with SO_REUSEPORT (not yet listening): every process that binds the
    same address this way gets a share of the connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def ca_download(pem: bytes) -> Callable[[], Response]:
    def ca_certificate() -> Response:
        """The deployment CA's certificate, for a phone or a script to trust."""
        return Response(pem, media_type=CA_MEDIA_TYPE,
                        headers={"Content-Disposition": 'attachment; filename="gridsense-ca.crt"'})
    return ca_certificate


async def _serve_http(http: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
    try:
        await http.serve(sockets=sockets)
    except SystemExit as exc:
        # uvicorn exits the process when it cannot bind; here that is an ordinary error, so
        # the rest of the server shuts down in order and the CLI reports it.
        raise RuntimeError(f"uvicorn stopped with exit code {exc.code}") from None

