"""server.yaml: the brief's keys, defaults, errors naming file:line: key, relative paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridsense_protocol.yamlconfig import ConfigError
from gridsense_server.config import ServerConfig, load_server_config

BRIEF_EXAMPLE = """\
mqtt:
  host: 127.0.0.1
  port: 1883
  client_id: gridsense-server-1
  share_group: gridsense-server
  username: null
  password_file: null
influxdb:
  url: http://127.0.0.1:8086
  database: gridsense
  batch_size: 5000
  flush_interval_s: 1.0
database:
  url: sqlite:///./state/server.db
registry:
  file: registry.yaml
http:
  host: 127.0.0.1
  port: 8080
auth:
  token_ttl_s: 43200
  secret_file: null
"""


def test_the_brief_example_loads_and_relative_paths_resolve_against_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "conf" / "server.yaml"
    path.parent.mkdir()
    path.write_text(BRIEF_EXAMPLE)
    config = load_server_config(path)
    folder = path.parent.resolve()
    assert config.database.url == f"sqlite:///{folder}/state/server.db"
    assert config.registry.file == folder / "registry.yaml"
    assert config.state_dir == folder / "state"
    assert config.http.host == "127.0.0.1"
    assert config.influxdb.batch_size == 5000


def test_defaults_bind_to_loopback() -> None:
    config = ServerConfig()
    assert config.http.host == "127.0.0.1"
    assert config.mqtt.share_group == "gridsense-server"


def test_postgres_urls_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "server.yaml"
    url = "postgresql+psycopg://gs:secret@db.example:5432/gridsense"
    path.write_text(f"database:\n  url: {url}\n")
    assert load_server_config(path).database.url == url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mqtt:\n  host: x\n  prot: 1883\n", ":3: mqtt.prot: unknown key"),
        ("influxdb:\n  batch_size: 0\n", ":2: influxdb.batch_size: Input should be greater"),
        ("http:\n  port: 99999\n", ":2: http.port:"),
        ("database:\n  url: mysql://x/y\n", ":2: database.url: only sqlite"),
        ("influxdb:\n  url: 127.0.0.1:8086\n", ":2: influxdb.url: String should match"),
        ("mqtt: [1, 2\n", ":2: (top level): not valid YAML"),
        ("registry:\n  file: r.yaml\nauthh: {}\n", ":3: authh: unknown key"),
    ],
)
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "server.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_server_config(path)
    assert str(caught.value).startswith(str(path)), str(caught.value)
    assert expected in str(caught.value)


def test_a_missing_mqtt_password_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "server.yaml"
    path.write_text("mqtt:\n  username: gs\n  password_file: secrets/mqtt.pw\n")
    with pytest.raises(ConfigError, match=r"mqtt.password_file: .*secrets/mqtt.pw does not exist"):
        load_server_config(path)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "mqtt.pw").write_text("pw\n")
    (tmp_path / "secrets" / "mqtt.pw").chmod(0o600)  # a world-readable one: test_secure_files
    assert load_server_config(path).mqtt.password_file == tmp_path / "secrets" / "mqtt.pw"


def test_issue3_keys_defaults_and_spool_folder(tmp_path: Path) -> None:
    path = tmp_path / "server.yaml"
    path.write_text(BRIEF_EXAMPLE)
    config = load_server_config(path)
    assert config.mqtt.shared is False  # plain subscriptions unless asked (Mosquitto 2.0)
    assert config.mqtt.session_expiry_s == 7 * 86400
    assert config.mqtt.receive_maximum == 1000
    assert config.influxdb.spool_max_mb == 1024
    assert config.spool_dir == tmp_path.resolve() / "state" / "spool"
    assert config.incidents.late_after_s == 300

    path.write_text(BRIEF_EXAMPLE.replace("  flush_interval_s: 1.0\n", """\
  flush_interval_s: 1.0
  spool_dir: spool-here
  spool_max_mb: 10
incidents:
  late_after_s: 60
""").replace("  share_group: gridsense-server\n", """\
  share_group: gridsense-server
  shared: true
  receive_maximum: 50
"""))
    config = load_server_config(path)
    assert config.spool_dir == tmp_path.resolve() / "spool-here"
    assert config.mqtt.shared and config.mqtt.receive_maximum == 50
    assert config.incidents.late_after_s == 60

    path.write_text(BRIEF_EXAMPLE.replace("  flush_interval_s: 1.0\n",
                                          "  flush_interval_s: 1.0\n  spool_max_mb: 0\n"))
    assert load_server_config(path).spool_dir is None  # no spool: ack only once written

    path.write_text(BRIEF_EXAMPLE.replace("  port: 1883\n", "  port: 1883\n  receive_maximum: 0\n"))
    with pytest.raises(ConfigError, match=r"server.yaml:4: mqtt.receive_maximum"):
        load_server_config(path)


def test_mqtt_tls_files_resolve_against_the_file_and_are_checked(tmp_path: Path) -> None:
    from gridsense_server.pki import DeploymentCA

    DeploymentCA.init(tmp_path / "ca")
    path = tmp_path / "server.yaml"
    path.write_text("mqtt: {port: 8883, tls: {ca_file: ca/ca.crt, server_name: broker}}\n")
    tls = load_server_config(path).mqtt.tls
    assert tls is not None and tls.ca_file == tmp_path / "ca" / "ca.crt"
    path.write_text("mqtt: {tls: {ca_file: ca/ca.key}}\n")
    with pytest.raises(ConfigError, match=r"mqtt\.tls: .*ca\.key: not a readable CA"):
        load_server_config(path)
