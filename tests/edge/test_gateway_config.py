"""Gateway config: the brief's schema, errors naming file, line and key, and the CLI around it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from edge_support import AGENT_BIN

from gridsense_edge.cli import main
from gridsense_edge.config import ConfigError, GatewayConfig, load_config
from gridsense_edge.drivers.modbus.temperature import ModbusTemperatureConfig
from gridsense_edge.rules.over_temperature import OverTemperatureConfig
from gridsense_edge.rules.rapid_rise import RapidRiseConfig

VALID = """\
gateway:
  id: gw-01
  state_dir: ./state/gw-01
mqtt:
  host: 127.0.0.1
  port: 1883
  password_file: null
  keepalive_s: 30
health:
  interval_s: 30
profiles_dir: null
buses:
  - id: rs485-0
    port: ./ttyUSB0
    baudrate: 9600
    parity: N
    stopbits: 1
    timeout_s: 0.5
devices:
  - type: modbus_temperature
    point: gw-01.boiler
    bus: rs485-0
    slave: 1
    profile: xy-md02
    metrics: [temperature]
    poll_interval_s: 1
    retries: 2
    report_deadband: 0.2
    refresh_interval_s: 5
  - type: modbus_temperature
    point: gw-01.pipe
    bus: rs485-0
    slave: 2
    profile: pt100-transmitter
rules:
  - type: over_temperature
    points: ["*"]
    threshold: 60
    hysteresis: 2
    min_duration_s: 5
    severity: major
  - type: rapid_rise
    points: ["*"]
    rate_per_min: 8
    window_s: 60
    severity: critical
"""


def write(tmp_path: Path, text: str, name: str = "gateway.yaml") -> Path:
    path = tmp_path / "conf" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


def test_the_briefs_example_loads_with_typed_entries(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    config = load_config(path)
    assert isinstance(config, GatewayConfig)
    assert config.gateway.id == "gw-01"
    assert isinstance(config.devices[0], ModbusTemperatureConfig)
    assert config.devices[0].metrics == ["temperature"]
    assert config.devices[1].slave == 2 and config.devices[1].metrics is None
    assert isinstance(config.rules[0], OverTemperatureConfig)
    assert isinstance(config.rules[1], RapidRiseConfig)
    assert config.rules[1].rate_per_min == 8


def test_relative_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, VALID)
    monkeypatch.chdir(tmp_path)  # somewhere else than the config's folder
    config = load_config(Path("conf/gateway.yaml"))
    folder = (tmp_path / "conf").resolve()
    assert config.gateway.state_dir.resolve() == folder / "state" / "gw-01"
    assert Path(config.buses[0].port).resolve() == folder / "ttyUSB0"
    assert path.exists()


def test_the_shipped_example_gateway_config_is_valid(repo_root: Path) -> None:
    config = load_config(repo_root / "firmware_configs" / "gateways" / "example-gateway.yaml")
    assert config.devices and config.rules and not config.warnings()


def test_a_misspelt_key_names_file_line_and_key_path(tmp_path: Path) -> None:
    text = VALID.replace("    report_deadband: 0.2", "    report_deadbnd: 0.2")
    error = problems_of(tmp_path, text)
    line = text.splitlines().index("    report_deadbnd: 0.2") + 1
    assert len(error.problems) == 1
    message = str(error)
    where = f"{tmp_path / 'conf' / 'gateway.yaml'}:{line}: devices[0].report_deadbnd:"
    assert message.startswith(where)
    assert "unknown key" in message


def test_a_misspelt_top_level_key_is_named(tmp_path: Path) -> None:
    error = problems_of(tmp_path, VALID.replace("health:", "heath:"))
    assert any(path == "heath" for path, _, _ in error.problems)


def test_a_device_on_an_unknown_bus_names_devices_i_bus_and_its_line(tmp_path: Path) -> None:
    text = VALID.replace("    bus: rs485-0\n    slave: 2", "    bus: rs485-9\n    slave: 2")
    error = problems_of(tmp_path, text)
    line = text.splitlines().index("    bus: rs485-9") + 1
    assert [(p, ln) for p, ln, _ in error.problems] == [("devices[1].bus", line)]
    assert "unknown bus 'rs485-9'" in error.problems[0][2] and "rs485-0" in error.problems[0][2]


def test_an_unknown_profile_names_the_key_and_lists_the_known_ones(tmp_path: Path) -> None:
    text = VALID.replace("profile: pt100-transmitter", "profile: pt1000")
    error = problems_of(tmp_path, text)
    line = text.splitlines().index("    profile: pt1000") + 1
    path, got_line, message = error.problems[0]
    assert (path, got_line) == ("devices[1].profile", line)
    assert "pt1000" in message and "xy-md02" in message


def test_a_metric_the_profile_lacks_is_named(tmp_path: Path) -> None:
    error = problems_of(tmp_path, VALID.replace("metrics: [temperature]", "metrics: [pressure]"))
    assert error.problems[0][0] == "devices[0].metrics"
    assert "pressure" in error.problems[0][2]


def test_duplicate_point_ids_are_refused_at_the_second_one(tmp_path: Path) -> None:
    error = problems_of(tmp_path, VALID.replace("point: gw-01.pipe", "point: gw-01.boiler"))
    assert [p for p, _, _ in error.problems] == ["devices[1].point"]
    assert "gw-01.boiler" in error.problems[0][2]


def test_duplicate_bus_ids_are_refused(tmp_path: Path) -> None:
    text = VALID.replace(
        "buses:\n", "buses:\n  - id: rs485-0\n    port: /dev/ttyUSB1\n"
    )
    error = problems_of(tmp_path, text)
    assert any(p == "buses" and "rs485-0" in m for p, _, m in error.problems)


def test_an_unknown_device_or_rule_type_is_named(tmp_path: Path) -> None:
    text = VALID.replace("type: rapid_rise", "type: rapid_rsie")
    error = problems_of(tmp_path, text)
    path, line, message = error.problems[0]
    assert (path, line) == ("rules[1]", text.splitlines().index("  - type: rapid_rsie") + 1)
    assert "not a known rule type" in message and "rapid_rise" in message
    error = problems_of(tmp_path, VALID.replace("type: modbus_temperature", "type: modbus_temp"))
    assert [p for p, _, _ in error.problems] == ["devices[0]", "devices[1]"]
    assert "modbus_temperature" in error.problems[0][2]


def test_values_are_range_checked(tmp_path: Path) -> None:
    error = problems_of(tmp_path, VALID.replace("port: 1883", "port: 188300"))
    assert error.problems[0][0] == "mqtt.port"
    error = problems_of(tmp_path, VALID.replace("threshold: 60", "threshold: .inf"))
    assert error.problems[0][0] == "rules[0].threshold"


def test_the_outbox_section_is_optional_with_defaults_and_validated(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    assert (config.outbox.max_mb, config.outbox.max_age_h, config.outbox.incident_max_mb,
            config.outbox.min_free_disk_mb) == (256, 72, 32, 100)
    assert config.mqtt.max_inflight == 200 and config.mqtt.reconnect_max_s == 30
    text = VALID.replace("health:\n", "outbox:\n  max_mb: 64\n  min_free_disk_mb: 0\nhealth:\n")
    text = text.replace("keepalive_s: 30", "keepalive_s: 30\n  max_inflight: 100")
    config = load_config(write(tmp_path, text))
    assert config.outbox.max_mb == 64 and config.outbox.min_free_disk_mb == 0
    assert config.mqtt.max_inflight == 100
    error = problems_of(tmp_path, VALID.replace("health:\n", "outbox:\n  max_mb: 0\nhealth:\n"))
    assert error.problems[0][0] == "outbox.max_mb"
    error = problems_of(tmp_path, VALID.replace("health:\n", "outbox:\n  max_gb: 1\nhealth:\n"))
    assert error.problems[0][0] == "outbox.max_gb"
    line = VALID.replace("health:\n", "outbox:\n  max_gb: 1\nhealth:\n").splitlines()
    assert error.problems[0][1] == line.index("  max_gb: 1") + 1


def test_a_missing_password_file_is_a_config_error(tmp_path: Path) -> None:
    error = problems_of(tmp_path, VALID.replace("password_file: null", "password_file: ./gw.pw"))
    assert error.problems[0][0] == "mqtt.password_file"


def test_check_config_prints_a_summary_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, VALID)
    assert main(["check-config", "--config", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["valid"] is True and summary["gateway"] == "gw-01"
    assert [d["point"] for d in summary["devices"]] == ["gw-01.boiler", "gw-01.pipe"]


def test_check_config_reports_problems_as_json_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, VALID.replace("retries: 2", "retrys: 2"))
    assert main(["check-config", "--config", str(path), "--json"]) == 2
    result = json.loads(capsys.readouterr().out)
    assert result["valid"] is False
    assert result["problems"][0]["path"] == "devices[0].retrys"
    assert result["problems"][0]["line"] == VALID.splitlines().index("    retries: 2") + 1


def test_run_with_a_bad_config_exits_2_with_the_message_before_connecting(tmp_path: Path) -> None:
    # Port 1 on localhost: nothing listens there; the agent must fail on the config first.
    text = VALID.replace("port: 1883", "port: 1").replace("stopbits: 1", "stopbit: 1")
    path = write(tmp_path, text)
    done = subprocess.run(
        [str(AGENT_BIN), "run", "--config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert f"{path}:" in done.stderr and "buses[0].stopbit" in done.stderr
    assert "mqtt" not in done.stderr.lower().replace("mqtt.", "")
    assert not (tmp_path / "conf" / "state").exists()


def test_cli_version_and_help(tmp_path: Path) -> None:
    version = subprocess.run(
        [str(AGENT_BIN), "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0 and version.stdout.startswith("gridsense-edge ")
    for args in (["--help"], ["run", "--help"], ["check-config", "--help"]):
        done = subprocess.run([str(AGENT_BIN), *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "usage:" in done.stdout
    missing = subprocess.run([str(AGENT_BIN), "run"], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "--config" in missing.stderr
    nofile = subprocess.run(
        [str(AGENT_BIN), "check-config", "--config", str(tmp_path / "nope.yaml")],
        capture_output=True, text=True, timeout=60,
    )
    assert nofile.returncode == 2
    assert "nope.yaml" in nofile.stderr and "cannot read" in nofile.stderr


def test_mqtt_tls_files_are_checked_when_the_config_loads(tmp_path: Path) -> None:
    from gridsense_server.pki import DeploymentCA

    ca, _ = DeploymentCA.init(tmp_path / "conf" / "ca")  # next to conf/gateway.yaml
    cert = ca.issue_client("gw-01")
    head = f"gateway: {{id: gw-01, state_dir: {tmp_path / 'state'}}}\n"
    good = write(tmp_path, head + f"mqtt: {{port: 8883, tls: {{ca_file: ca/ca.crt, "
                                  f"cert_file: {cert.cert_file}, key_file: {cert.key_file}}}}}\n")
    assert load_config(good).mqtt.tls is not None
    error = problems_of(tmp_path, head + "mqtt: {tls: {ca_file: ca/missing.crt}}\n")
    assert "ca/missing.crt: not a readable CA certificate file" in str(error)
    cert.key_file.chmod(0o644)
    error = problems_of(tmp_path, head + f"mqtt: {{tls: {{ca_file: ca/ca.crt, cert_file: "
                                         f"{cert.cert_file}, key_file: {cert.key_file}}}}}\n")
    assert "gw-01.key is readable by group or others" in str(error)
    error = problems_of(tmp_path, head + f"mqtt: {{tls: {{ca_file: ca/ca.crt, cert_file: "
                                         f"{cert.cert_file}}}}}\n")
    assert "cert_file and key_file go together" in str(error)


def test_a_config_imports_only_the_drivers_and_rules_it_names(tmp_path: Path) -> None:
    """A temperature gateway's agent builds no camera, door-reader or model classes; a config
    that names a camera gets the camera's; every type's module is where the index says."""
    (tmp_path / "gateway.yaml").write_text(VALID)
    probe = """if True:
        import json, sys
        from gridsense_edge.config import load_config
        config = load_config(sys.argv[1])
        print(json.dumps(sorted({".".join(m.split(".")[1:3]) for m in sys.modules
                                 if m.startswith(("gridsense_edge.drivers.",
                                                  "gridsense_edge.rules."))
                                 and m.split(".")[2] != "base"})))
        print(type(config).model_fields["devices"].annotation)
    """
    done = subprocess.run([str(AGENT_BIN.parent / "python"), "-c", probe,
                           str(tmp_path / "gateway.yaml")],
                          capture_output=True, text=True, timeout=120, check=True)
    loaded, devices_type = done.stdout.splitlines()
    assert json.loads(loaded) == ["drivers.modbus", "rules.over_temperature", "rules.rapid_rise"]
    assert "ModbusTemperatureConfig" in devices_type and "CameraConfig" not in devices_type

    from gridsense_edge.drivers import DRIVERS
    from gridsense_edge.rules import RULES

    for registry in (DRIVERS, RULES):
        registry.load()
        assert {t: registry.get(t).factory.__module__ for t in registry.index} == {
            t: f"{registry.package}.{module}" for t, module in registry.index.items()}


def test_the_full_model_is_the_one_the_server_validates_pushed_versions_with() -> None:
    schema = GatewayConfig.model_json_schema()
    kinds = {ref.rsplit("/", 1)[-1]
             for ref in json.dumps(schema["properties"]["devices"]).split('"') if "#/$defs/" in ref}
    assert kinds == {"CameraConfig", "ModbusTemperatureConfig", "OneWireTemperatureConfig",
                     "OsdpReaderConfig", "QrHidConfig", "QrSerialConfig"}
