"""Secrets and keys are created 0600 and refused when group- or world-readable; the database and
certificates are created 0600 and warned about. Each message names the file and the fix."""

from __future__ import annotations

import logging
import re
import stat
import subprocess
from pathlib import Path

import pytest

from gridsense_devtools.processes import BIN, env_without_proxies
from gridsense_edge.config import load_config
from gridsense_protocol.yamlconfig import ConfigError
from gridsense_server.app import ServerApp, load_token_secret
from gridsense_server.config import HttpTlsConfig, load_server_config
from gridsense_server.listeners import HttpsSetupError, tls_files
from gridsense_server.pki.ca import DeploymentCA
from gridsense_server.secure_files import FileProblem, InsecureFileError

CHMOD_HINT = "is readable by group or others (mode 0o644); run: chmod 600"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _world_readable(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o644)
    return path


def test_a_world_readable_mqtt_password_file_is_refused(tmp_path: Path) -> None:
    secret = _world_readable(tmp_path / "mqtt.pw", "pw\n")
    path = tmp_path / "server.yaml"
    path.write_text("mqtt:\n  username: gs\n  password_file: mqtt.pw\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_server_config(path)
    assert f"mqtt.password_file: {secret} {CHMOD_HINT} {secret}" in str(info.value)
    secret.chmod(0o600)
    assert load_server_config(path).mqtt.password_file == secret
    secret.write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"mqtt.password_file: {secret} is empty")):
        load_server_config(path)


def test_the_gateway_refuses_a_world_readable_password_file(tmp_path: Path) -> None:
    secret = _world_readable(tmp_path / "gw.pw", "pw\n")
    path = tmp_path / "gateway.yaml"
    path.write_text("gateway: {id: gw-01}\nmqtt: {password_file: gw.pw}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"mqtt.password_file: {secret} {CHMOD_HINT}")):
        load_config(path)


def test_the_token_secret_is_created_0600_and_refused_when_exposed(tmp_path: Path) -> None:
    path = tmp_path / "state" / "token.secret"
    assert len(load_token_secret(path)) == 64
    assert _mode(path) == 0o600
    path.chmod(0o644)
    with pytest.raises(InsecureFileError, match=re.escape(f"{path} {CHMOD_HINT}")):
        load_token_secret(path)


def test_a_short_token_secret_names_the_file_and_the_length(tmp_path: Path) -> None:
    path = tmp_path / "token.secret"
    path.write_text("short\n", encoding="utf-8")
    path.chmod(0o600)
    with pytest.raises(FileProblem, match=rf"{path}: the token secret is 5 bytes; it must be at "
                                          r"least 16"):
        load_token_secret(path)


def test_the_server_refuses_to_start_on_an_exposed_secret(tmp_path: Path) -> None:
    secret = _world_readable(tmp_path / "token.secret", "0123456789abcdef0123456789abcdef\n")
    config = tmp_path / "server.yaml"
    config.write_text(f"database: {{url: 'sqlite:///{tmp_path}/server.db'}}\n"
                      f"auth: {{secret_file: {secret}}}\nhttp: {{port: 0}}\n", encoding="utf-8")
    result = subprocess.run([str(BIN / "gridsense-server"), "run", "--config", str(config)],
                            capture_output=True, text=True, timeout=120, check=False,
                            env=env_without_proxies())
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"{secret} {CHMOD_HINT} {secret}" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_database_and_its_wal_are_created_0600(tmp_path: Path) -> None:
    config = tmp_path / "server.yaml"
    config.write_text(f"database: {{url: 'sqlite:///{tmp_path}/db/server.db'}}\n",
                      encoding="utf-8")
    app = ServerApp(load_server_config(config))
    app.migrate()
    with app.engine.connect() as connection:  # an open connection keeps -wal and -shm
        connection.exec_driver_sql("SELECT count(*) FROM staff")
        files = sorted((tmp_path / "db").iterdir())
        assert [f.name for f in files] == ["server.db", "server.db-shm", "server.db-wal"]
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    app.engine.dispose()


def test_an_exposed_database_is_warned_about(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    database = _world_readable(tmp_path / "server.db", "")
    config = tmp_path / "server.yaml"
    config.write_text(f"database: {{url: 'sqlite:///{database}'}}\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="gridsense_server.secure_files"):
        ServerApp(load_server_config(config)).engine.dispose()
    [record] = caplog.records
    assert f"file={database}" in record.getMessage() and "mode=0o644" in record.getMessage()
    assert f"chmod 600 {database}" in record.getMessage()


def test_the_ca_writes_keys_and_issued_certificates_0600(tmp_path: Path) -> None:
    ca, _ = DeploymentCA.init(tmp_path / "ca")
    issued = ca.issue_server("web", dns=["gridsense.test"], ips=["127.0.0.1"])
    assert _mode(ca.key_file) == 0o600 and _mode(issued.key_file) == 0o600
    assert _mode(issued.cert_file) == 0o600
    assert _mode(ca.cert_file) == 0o644  # handed out to phones and gateways on purpose


def test_an_exposed_https_key_is_refused(tmp_path: Path) -> None:
    ca, _ = DeploymentCA.init(tmp_path / "ca")
    issued = ca.issue_server("web", dns=["gridsense.test"], ips=[])
    issued.key_file.chmod(0o644)
    tls = HttpTlsConfig(cert_file=issued.cert_file, key_file=issued.key_file)
    with pytest.raises(HttpsSetupError, match=re.escape(f"{issued.key_file} {CHMOD_HINT}")):
        tls_files(tls)


def test_https_from_the_ca_folder_issues_once(tmp_path: Path) -> None:
    tls = HttpTlsConfig(ca_dir=tmp_path / "ca", names=["gridsense.test", "127.0.0.1"])
    first = tls_files(tls)
    assert first.ca_file == tmp_path / "ca" / "ca.crt"
    assert _mode(first.key_file) == 0o600
    before = first.cert_file.read_bytes()
    assert tls_files(tls).cert_file.read_bytes() == before  # not re-issued on each start
    wider = HttpTlsConfig(ca_dir=tmp_path / "ca", names=["gridsense.test", "192.0.2.7"])
    assert tls_files(wider).cert_file.read_bytes() != before  # a new name: issued again
    issued = DeploymentCA.open(tmp_path / "ca").issued()
    assert [(i.dns, i.ips) for i in issued] == [(("gridsense.test",), ("192.0.2.7",))]
