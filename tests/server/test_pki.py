"""The deployment CA: made once with a private key only its owner reads, issuing server
certificates for names and addresses and client certificates named after a gateway."""

from __future__ import annotations

import ipaddress
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509

from gridsense_server.cli import main
from gridsense_server.pki import CaError, DeploymentCA


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_ca_is_made_once_with_owner_only_keys(tmp_path: Path) -> None:
    ca, created = DeploymentCA.init(tmp_path / "ca")
    assert created
    again, created_again = DeploymentCA.init(tmp_path / "ca")
    assert not created_again
    assert again.cert == ca.cert
    assert _mode(ca.key_file) == 0o600
    assert _mode(ca.cert_file) == 0o644
    issued = ca.issue_server("broker", dns=["broker.example", "localhost"], ips=["127.0.0.1"])
    assert _mode(issued.key_file) == 0o600
    cert = x509.load_pem_x509_certificate(issued.cert_file.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["broker.example", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert cert.issuer == ca.cert.subject
    client = ca.issue_client("gw-01")
    client_cert = x509.load_pem_x509_certificate(client.cert_file.read_bytes())
    assert client_cert.subject.rfc4514_string() == "CN=gw-01"
    assert [i.name for i in ca.issued()] == ["broker", "gw-01"]


def test_a_ca_key_others_can_read_is_refused(tmp_path: Path) -> None:
    ca, _ = DeploymentCA.init(tmp_path / "ca")
    os.chmod(ca.key_file, 0o640)
    with pytest.raises(CaError, match=r"ca\.key is readable by group or others.*chmod 600"):
        DeploymentCA.open(tmp_path / "ca")


def test_requests_that_make_no_sense_are_refused(tmp_path: Path) -> None:
    ca, _ = DeploymentCA.init(tmp_path / "ca")
    with pytest.raises(CaError, match="at least one DNS name or IP address"):
        ca.issue_server("broker", dns=[], ips=[])
    with pytest.raises(CaError, match="not an IP address"):
        ca.issue_server("broker", dns=[], ips=["300.1.1.1"])
    with pytest.raises(CaError, match=r"name '\.\./x'"):
        ca.issue_client("../x")
    with pytest.raises(CaError, match=r"does not exist.*ca init"):
        DeploymentCA.open(tmp_path / "none")


def test_the_ca_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = str(tmp_path / "ca")
    assert main(["ca", "init", "--dir", folder, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["created"] is True
    assert main(["ca", "issue-server", "web", "--dir", folder, "--dns", "gridsense.local",
                 "--ip", "10.0.0.5", "--json"]) == 0
    web = json.loads(capsys.readouterr().out)
    assert web["dns"] == ["gridsense.local"] and web["ips"] == ["10.0.0.5"]
    assert main(["ca", "issue-client", "gw-02", "--dir", folder]) == 0
    assert "CN=gw-02" in capsys.readouterr().out
    assert main(["ca", "show", "--dir", folder, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [i["name"] for i in shown["issued"]] == ["gw-02", "web"]
    assert main(["ca", "show", "--dir", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
