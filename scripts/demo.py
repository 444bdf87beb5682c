"""scripts/demo: the whole system on one machine, as a newcomer first sees it.

Starts a private Mosquitto (accounts through its dynamic-security plugin, demo_broker.py) and
InfluxDB (or VictoriaMetrics with --timeseries victoriametrics; config and data under .demo/),
the server with the demo community's registry, and three simulated gateways: gw-01 and gw-02
with Modbus temperature sensors on pseudo-terminals (gw-01 also with a camera on a rendered
video), gw-03 with an OSDP reader at a building entrance (demo_access.py); prints the
addresses and demo logins; stops everything in order on Ctrl-C or after --duration seconds,
then prints what the system saw.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
import urllib.error
from datetime import UTC, datetime
from pathlib import Path

from demo_access import ACCESS_GATEWAY, access_summary, start_entrance, what_to_try_access
from demo_broker import (
    ADMIN,
    SERVER_ACCOUNT,
    add_accounts,
    demo_broker,
    secret_file,
    what_to_try_broker,
)
from demo_camera import demo_cameras, save_snapshots
from demo_config import seed_configs, what_to_try_config
from demo_lifecycle import lifecycle_config, what_to_try
from demo_passes import GateScanner, play_passes, seed_resident_code, what_to_try_passes
from demo_plan import install_site_plan, plan_summary, what_to_try_plan
from demo_store import DemoStore, demo_store
from demo_thermal_room import SHED, SHED_SLAVE, WHAT_TO_TRY, anomaly_rule, seed_history
from sqlalchemy.engine import make_url

from gridsense_devtools.http import http_json, login, server_up, trust_ca
from gridsense_devtools.ports import PortTaken, free_port, require_free
from gridsense_devtools.processes import Procs
from gridsense_devtools.services import TlsListener
from gridsense_server.broker import AccountError
from gridsense_server.pki import DeploymentCA

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "demo_data"
GATEWAYS = ("gw-01", "gw-02")
# --workers N: the server processes share a PostgreSQL database, made afresh on each run.
DEMO_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
DEMO_DATABASE = "gridsense_demo"
TLS_GATEWAYS = ("gw-01",)  # over the TLS listener; the others stay on plain loopback MQTT
LOGINS = ["control", "worker-g01", "leader-g01", "worker-g02", "leader-g02", "duty-ly",
          "centre-hx", "night-g01"]

# Per-gateway devices and rules. The boiler and the clinic's cold room have their own limits.
DEVICES = {
    "gw-01": [("gw-01.boiler", 1, "xy-md02"), ("gw-01.pump", 2, "xy-md02"),
              (SHED, SHED_SLAVE, "xy-md02")],
    "gw-02": [("gw-02.substation", 1, "pt100-transmitter"), ("gw-02.clinic-fridge", 2, "xy-md02")],
}
RULES = {
    "gw-01": [
        {
            "type": "over_temperature",
            "points": ["gw-01.*"],
            "threshold": 60,
            "hysteresis": 3,
            "min_duration_s": 5,
            "severity": "major",
        },
        {
            "type": "rapid_rise",
            "points": ["gw-01.*"],
            "rate_per_min": 30,
            "window_s": 30,
            "severity": "critical",
        },
        anomaly_rule(),
    ],
    "gw-02": [
        {
            "type": "over_temperature",
            "points": ["gw-02.substation"],
            "threshold": 55,
            "hysteresis": 2,
            "min_duration_s": 10,
            "severity": "major",
        },
        {
            "type": "over_temperature",
            "points": ["gw-02.clinic-fridge"],
            "threshold": 8,
            "hysteresis": 0.5,
            "min_duration_s": 10,
            "severity": "critical",
        },
    ],
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop by itself after this many seconds (default: run until Ctrl-C)",
    )
    parser.add_argument("--https-port", type=int, default=8443,
                        help="the web app and API over HTTPS (8443)")
    parser.add_argument("--http-port", type=int, default=8080,
                        help="plain HTTP: redirects to HTTPS and serves /ca.crt (8080)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address the web server listens on (0.0.0.0 lets phones on the "
                             "estate's network in; default 127.0.0.1)")
    parser.add_argument("--name", action="append", default=[], metavar="NAME",
                        help="a name or address phones use for this machine (repeatable; the "
                             "first is the URL printed); the web certificate names them all")
    parser.add_argument(
        "--mqtt-port",
        type=int,
        default=None,
        help="broker port (default: a free port; 1883 may be taken)",
    )
    parser.add_argument("--influx-port", type=int, default=8086, help="InfluxDB port (8086)")
    parser.add_argument("--timeseries", choices=("influxdb", "victoriametrics"),
                        default="influxdb",
                        help="the time-series store the server writes to (default influxdb)")
    parser.add_argument("--victoria-port", type=int, default=8428,
                        help="VictoriaMetrics port, with --timeseries victoriametrics (8428)")
    parser.add_argument(
        "--dir",
        type=Path,
        default=REPO / ".demo",
        help="where config, logs and data go (wiped at start; default .demo/)",
    )
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="N server processes sharing the load (needs PostgreSQL: "
                             "--postgres; docs/scaling.md)")
    parser.add_argument("--postgres", default=DEMO_POSTGRES, metavar="URL",
                        help="with --workers: the PostgreSQL server whose database "
                             "gridsense_demo is made afresh (default %(default)s)")
    parser.add_argument(
        "--ca-dir",
        type=Path,
        default=None,
        help="the deployment CA, made on the first run and kept (default: <dir>-ca, .demo-ca/)",
    )
    return parser.parse_args()


def demo_pki(ca_dir: Path) -> tuple[DeploymentCA, TlsListener]:
    """The CA (made once, kept across runs so a trusted CA stays trusted) and the broker's
    TLS listener with a certificate for this machine's loopback names."""
    ca, _created = DeploymentCA.init(ca_dir, common_name="gridsense demo CA")
    broker = ca.issue_server("demo-broker", dns=["localhost"], ips=["127.0.0.1"])
    return ca, TlsListener(ca.cert_file, broker.cert_file, broker.key_file)


def web_names(args: argparse.Namespace) -> list[str]:
    """The names the web certificate carries: what phones type, then loopback."""
    return list(dict.fromkeys([*args.name, "localhost", "127.0.0.1"]))


def write_yaml(path: Path, data: object) -> Path:
    # JSON is valid YAML, and needs no extra dependency in this launcher.
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def gateway_config(gw: str, mqtt_port: int, work: Path,
                   tls: dict[str, str] | None = None) -> Path:
    link = work / "tty" / f"{gw}-rs485"
    mqtt: dict[str, object] = {
        "host": "localhost" if tls else "127.0.0.1",  # the name the broker's certificate has
        "port": mqtt_port,
        "keepalive_s": 15,
        "password_file": str(secret_file(work, gw)),
    }
    if tls:
        mqtt["tls"] = tls
    config = {
        "gateway": {"id": gw, "state_dir": str(work / "state" / gw)},
        "mqtt": mqtt,
        "health": {"interval_s": 10},
        "buses": [{"id": "rs485-0", "port": str(link), "timeout_s": 0.3}],
        "devices": [
            {
                "type": "modbus_temperature",
                "point": point,
                "bus": "rs485-0",
                "slave": slave,
                "profile": profile,
                "metrics": ["temperature"],
                "poll_interval_s": 1,
                "retries": 1,
                "report_deadband": 0.2,
                "refresh_interval_s": 5,
            }
            for point, slave, profile in DEVICES[gw]
        ] + demo_cameras(gw, work),
        "rules": RULES[gw],
    }
    return write_yaml(work / "config" / f"{gw}.yaml", config)


def server_config(args: argparse.Namespace, mqtt_port: int, work: Path,
                  tls: dict[str, str], ca_dir: Path, base: str, store: DemoStore) -> Path:
    config = {
        "mqtt": {
            "host": "localhost",
            "port": mqtt_port,
            "tls": tls,
            # Its account's name: the broker pins each login to the client id of that name.
            "client_id": SERVER_ACCOUNT,
            "share_group": "gridsense-server",
            "username": SERVER_ACCOUNT,
            "password_file": str(secret_file(work, SERVER_ACCOUNT)),
        },
        "timeseries": store.server_section(),
        "database": {"url": database_url(args, work)},
        "registry": {"file": str(DATA / "registry.yaml")},
        # HTTPS with a certificate from the demo's CA (issued on the first start and again
        # when --name adds a name); plain HTTP only redirects and hands out the CA.
        "http": {"host": args.host, "port": args.https_port, "redirect_port": args.http_port,
                 "tls": {"ca_dir": str(ca_dir), "issue_as": "demo-web",
                         "names": web_names(args)}},
        "lifecycle": lifecycle_config(base),
        "display": {"title": "莲园社区网格化管理平台"},
        # A new gateway enrolls with a one-time code: the server adds its broker account
        # (as the broker's admin) and signs its client certificate with the demo's CA.
        "broker": {"admin": ADMIN, "admin_password_file": str(secret_file(work, ADMIN))},
        "enrollment": {"server_url": base, "broker_port": mqtt_port, "broker_tls": True,
                       "broker_server_name": "localhost", "ca_dir": str(ca_dir)},
    }
    return write_yaml(work / "config" / "server.yaml", config)


def database_url(args: argparse.Namespace, work: Path) -> str:
    """SQLite for one server process; several share a fresh PostgreSQL database."""
    if args.workers <= 1:
        return f"sqlite:///{work / 'state' / 'server.db'}"
    import psycopg

    with psycopg.connect(args.postgres, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DEMO_DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DEMO_DATABASE}"')
    url = make_url(args.postgres).set(drivername="postgresql+psycopg", database=DEMO_DATABASE)
    return url.render_as_string(hide_password=False)


def what_to_try_enrollment(base: str) -> str:
    return f"""A fourth gateway, as an installer adds it (docs/operations.md, "Enroll a gateway"):
  1. as control: POST {base}/api/v1/gateways {{"id": "gw-04", "community": "ly",
     "name": "4号楼网关"}} — its one-time code and the command to type come back
  2. on the new gateway: gridsense-edge enroll --server {base} --code <code> \\
       --ca-fingerprint <sha256> --state-dir <folder>, then gridsense-edge run
  3. gridsense-edge discover --config <its gateway.yaml> --modbus <port> --json; paste the output
     into {base}/#/install as installer-ly, assign the sensor, save: the gateway runs it
  4. 开始调试检查 / start the check: every point's first reading and a drill page, then green"""


def summary(base: str, store: DemoStore, work: Path) -> None:
    print("\n=== what the demo saw ===")
    try:
        for point, count in sorted(store.readings_per_point().items()):
            print(f"  {store.label} temperature readings  {point:<22} {count}")
    except (OSError, RuntimeError) as exc:
        print(f"  {store.label} query failed: {exc}")
    try:
        token = login(base)
        # The control room's chart of the boiler, read back through the API from the store.
        chart = http_json("GET", f"{base}/api/v1/points/gw-01.boiler/series?step=60", token)
        print(f"  chart of gw-01.boiler (last 24 h, {chart['step_s']} s buckets): "
              f"{len(chart['points'])} buckets, {sum(p['count'] for p in chart['points'])} "
              "readings")
        for inc in http_json("GET", f"{base}/api/v1/incidents", token):
            print(
                f"  incident {inc['type']:<17} {inc['point']:<22} grid={inc['grid']} "
                f"severity={inc['severity']} state={inc['state']} count={inc['count']}"
            )
            # Who was paged, from the incident's own history (what escalation did).
            detail = http_json("GET", f"{base}/api/v1/incidents/{inc['id']}", token)
            for entry in detail["history"]:
                if entry["action"] == "escalate":
                    print(f"           {entry['at'][11:19]} escalate {entry['note']}")
        save_snapshots(base, token, work)
        plan_summary(base, token)
        access_summary(base, token)
    except (OSError, urllib.error.URLError, KeyError) as exc:
        print(f"  API query failed: {exc}")


def phone_instructions(base: str, ca_url: str, host: str) -> str:
    """How to trust the demo's CA on a phone: Chinese first, English second."""
    reach = ("" if host not in ("127.0.0.1", "localhost") else
             "\n  (只在本机监听：手机访问请加 --host 0.0.0.0 --name <本机局域网地址> /"
             "\n   listening on loopback only: for phones add --host 0.0.0.0 --name <LAN address>)")
    return f"""手机访问 / on a phone:{reach}
  1. 用手机浏览器打开 {ca_url} 下载演示 CA 证书。
     Android：设置 → 安全 → 加密与凭据 → 安装证书 → CA 证书，选择下载的文件。
     iOS：允许安装描述文件 → 设置 → 通用 → VPN 与设备管理 → 安装；再到 设置 → 通用 → 关于本机 →
     证书信任设置，打开对 "gridsense demo CA" 的完全信任。
  2. 打开 {base}/ 并登录（摄像头和离线功能需要 HTTPS）。
  1. Open {ca_url} in the phone's browser to download the demo CA certificate.
     Android: Settings → Security → Encryption & credentials → Install a certificate →
     CA certificate, pick the downloaded file.
     iOS: allow the profile → Settings → General → VPN & Device Management → Install; then
     Settings → General → About → Certificate Trust Settings: full trust for "gridsense demo CA".
  2. Open {base}/ and sign in (the camera and offline use need HTTPS)."""


def main() -> int:
    args = parse_args()
    fixed_ports = {"server HTTPS": args.https_port, "server HTTP": args.http_port}
    if args.timeseries == "victoriametrics":
        fixed_ports["VictoriaMetrics"] = args.victoria_port
    else:
        fixed_ports["InfluxDB"] = args.influx_port
    if args.mqtt_port:
        fixed_ports["MQTT broker"] = args.mqtt_port
    try:
        require_free(fixed_ports)
    except PortTaken as exc:
        print(f"demo cannot start: {exc}", file=sys.stderr)
        return 1
    work: Path = args.dir.resolve()
    if work.exists():
        shutil.rmtree(work)
    for sub in ("config", "logs", "state", "tty"):
        (work / sub).mkdir(parents=True)
    mqtt_port = args.mqtt_port or free_port()
    web_name = web_names(args)[0]
    base = f"https://{web_name}:{args.https_port}"
    # The demo's own calls go to its own machine: the name phones use may resolve only for them.
    local = f"https://localhost:{args.https_port}"
    ca_dir = (args.ca_dir or work.with_name(f"{work.name}-ca")).resolve()
    ca, listener = demo_pki(ca_dir)
    trust_ca(ca.cert_file)  # the demo's own calls check the server's certificate like a phone
    tls = {"ca_file": str(ca.cert_file)}
    ca_url = f"http://{web_name}:{args.http_port}/ca.crt"

    broker = demo_broker(work, mqtt_port, listener)
    store = demo_store(args.timeseries, work, args.influx_port, args.victoria_port)
    procs = Procs(work / "logs", cwd=REPO)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        print(f"starting Mosquitto on 127.0.0.1:{mqtt_port} (TLS: {listener.port}) and "
              f"{store.label} on {store.url} ...")
        broker.start()
        # Every account has its own password and pinned client ids; each gateway's ACL keeps
        # it under its own prefix.
        add_accounts(work, mqtt_port, [*GATEWAYS, ACCESS_GATEWAY], args.workers)
        store.start()
        for gw in GATEWAYS:
            procs.start(
                f"sim-{gw}",
                "gridsense-edge",
                "simulate",
                "modbus",
                "--scenario",
                str(DATA / f"{gw}.scenario.yaml"),
                "--link",
                str(work / "tty" / f"{gw}-rs485"),
            )
        server_yaml = server_config(args, listener.port, work, tls, ca_dir, base, store)
        server = procs.start("server", "gridsense-server", "run", "--config", str(server_yaml),
                             "--workers", str(args.workers))
        for gw in GATEWAYS:
            link = work / "tty" / f"{gw}-rs485"
            procs.wait_until(link.exists, 30, f"simulated RS-485 bus of {gw}")
        procs.wait_until(lambda: server_up(local), 60, "server")
        seed_history(work / "state" / "gw-01", datetime.now(UTC))
        placed = install_site_plan(local)  # 莲园社区's drawing, the demo's points placed on it
        configs = {}
        for gw in GATEWAYS:
            over_tls = gw in TLS_GATEWAYS
            config = gateway_config(gw, listener.port if over_tls else mqtt_port, work,
                                    tls if over_tls else None)
            procs.start(gw, "gridsense-edge", "run", "--config", str(config))
            configs[gw] = config
        seed_configs(server_yaml, configs)
        entrance = start_entrance(procs, work, mqtt_port, local)  # gw-03: OSDP reader, script
        resident_code = seed_resident_code(local)  # a phone pass for 陈静
        play_passes(local, entrance)  # her phone QR and her visitor's at gw-03's reader
        gate = GateScanner(work, local, entrance)  # the newcomer's own scans
        broker_pid = broker.proc.pid if broker.proc else "?"
        tls_users = ", ".join(("server", *TLS_GATEWAYS))
        print(
            f"""
gridsense demo is running.
  server          {base}/   (API docs: {base}/docs)
  for the README  export GRIDSENSE_URL={base} GRIDSENSE_CA={ca.cert_file}
  incidents API   {base}/api/v1/incidents   gateways: {base}/api/v1/gateways
  live stream     wss://{web_name}:{args.https_port}/api/v1/stream?token=<token>
  time series     {store.label} at {store.url}   database: gridsense
  MQTT broker     127.0.0.1:{mqtt_port}   TLS: localhost:{listener.port} ({tls_users})
  CA certificate  {ca.cert_file}   (the deployment CA; kept across runs)
  logins          {", ".join(LOGINS)}   (password: demo)
  get a token     curl -s --cacert {ca.cert_file} -X POST {base}/api/v1/auth/token \\
                    -H 'Content-Type: application/json' \\
                    -d '{{"username":"control","password":"demo"}}'
  files and logs  {work}
  fault drill     kill -STOP {broker_pid} (broker) or {store.pid} ({store.label}), -CONT 30 s later;
                  then .venv/bin/gridsense-server check --config {work}/config/server.yaml \\
                         --max-gap 10      (docs/operations.md explains the drill)
The boiler room on gw-01 heats past 60 °C about 30 s in: an over_temperature incident for grid g01.
The lobby camera on gw-01 sees a person walk into its restricted zone a few seconds in: an
intrusion incident whose snapshot (box and zone drawn) is at /api/v1/incidents/<id>/snapshot.
{phone_instructions(base, ca_url, args.host)}
{what_to_try(base)}
{WHAT_TO_TRY}
{what_to_try_plan(base, placed)}
{what_to_try_access(base)}
{what_to_try_passes(base, resident_code, gate.path, server.popen.pid)}
{what_to_try_broker(work, mqtt_port)}
{what_to_try_enrollment(base)}
{what_to_try_config(base)}
{"Stops after " + str(int(args.duration)) + " s." if args.duration else "Ctrl-C stops everything."}
""",
            flush=True,
        )
        deadline = time.monotonic() + args.duration if args.duration else None
        while not stopping and (deadline is None or time.monotonic() < deadline):
            procs.check()
            time.sleep(0.5)
        if server_up(local):
            summary(local, store, work)
        return 0
    except (RuntimeError, TimeoutError, AccountError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        print("stopping ...", flush=True)
        procs.stop_all()
        store.stop()
        broker.stop()
        print(f"stopped. Logs and data stay in {work} until the next run.")


if __name__ == "__main__":
    sys.exit(main())
