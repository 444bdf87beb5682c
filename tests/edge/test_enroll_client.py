"""``gridsense-edge enroll`` over HTTPS against a loopback TLS server standing in for the
gridsense server: the CA is trusted only by its fingerprint, the code goes only to a server
whose certificate that CA issued, and a man in the middle that relays the real CA file but
shows its own certificate never sees the code."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gridsense_edge.enroll.client import EnrollFailure, FailureKind, Server
from gridsense_server.pki import DeploymentCA


class _Stand(ThreadingHTTPServer):
    ca_pem: bytes
    codes_seen: list[str]


class _Handler(BaseHTTPRequestHandler):
    server: _Stand

    def do_GET(self) -> None:
        self._send(200, self.server.ca_pem)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.codes_seen.append(body["code"])
        self._send(200, json.dumps({"gateway": "gw-07", "ca_pem": self.server.ca_pem.decode()}
                                   ).encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def stands() -> Iterator[list[_Stand]]:
    made: list[_Stand] = []
    yield made
    for stand in made:
        stand.shutdown()
        stand.server_close()


def https_stand(stands: list[_Stand], relayed_ca: DeploymentCA, signer: DeploymentCA) -> str:
    """An HTTPS server offering ``relayed_ca``'s file, with a certificate from ``signer``."""
    issued = signer.issue_server("stand", dns=["localhost"], ips=["127.0.0.1"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(issued.cert_file, issued.key_file)
    stand = _Stand(("127.0.0.1", 0), _Handler)
    stand.socket = context.wrap_socket(stand.socket, server_side=True)
    stand.ca_pem, stand.codes_seen = relayed_ca.cert_file.read_bytes(), []
    threading.Thread(target=stand.serve_forever, daemon=True).start()
    stands.append(stand)
    return f"https://127.0.0.1:{stand.server_port}"


def test_the_pinned_ca_is_trusted_and_an_impostor_never_sees_the_code(
    tmp_path: Path, stands: list[_Stand]
) -> None:
    ca, _ = DeploymentCA.init(tmp_path / "ca")
    other, _ = DeploymentCA.init(tmp_path / "other", common_name="an impostor's CA")

    real = Server(https_stand(stands, ca, ca), ca.fingerprint)
    pem = real.trusted_ca()
    assert real.enroll("ABCDE-FGHJK", "csr", pem)["gateway"] == "gw-07"
    assert stands[0].codes_seen == ["ABCDE-FGHJK"]

    # The real CA file relayed, but the TLS certificate is the impostor's own.
    impostor = Server(https_stand(stands, ca, other), ca.fingerprint)
    pem = impostor.trusted_ca()
    with pytest.raises(EnrollFailure) as refused:
        impostor.enroll("ABCDE-FGHJK", "csr", pem)
    assert refused.value.kind is FailureKind.FINGERPRINT
    assert stands[1].codes_seen == []

    # Its own CA file: refused at the download, before any code is sent.
    with pytest.raises(EnrollFailure) as mismatch:
        Server(https_stand(stands, other, other), ca.fingerprint).trusted_ca()
    assert mismatch.value.kind is FailureKind.FINGERPRINT
    assert stands[2].codes_seen == []
