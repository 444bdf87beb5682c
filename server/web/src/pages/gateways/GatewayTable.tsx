// The gateways table: state, last message, drivers and their devices, outbox, CPU and memory,
// configuration and agent versions. A row's button shows its points below.
import { Badge } from "../../components/Badge";
import type { Tone } from "../../components/Badge";
import { gatewayStateName, t } from "../../i18n";
import { duration, formatDateTime, relative } from "../../time";
import type { DriverRow, GatewayRow } from "./types";

const STALE_S = 180;  // "online" yet silent this long: shown, the state alone would mislead

export const gatewayName = (g: GatewayRow) => g.name || g.id;

function driverTone(state: string): Tone {
  return state === "ok" ? "ok" : state === "degraded" || state === "starting" ? "warn" : "critical";
}

export function megabytes(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? "—" : `${(bytes / 2 ** 20).toFixed(1)} MB`;
}

function Drivers(props: { drivers: DriverRow[] }) {
  return (
    <ul class="drivers">
      {props.drivers.map((d) => {
        const ok = d.devices.filter((x) => x.state === "ok").length;
        const bad = d.devices.filter((x) => x.state !== "ok");
        return (
          <li key={d.name} title={d.detail ?? undefined}>
            <span class="driver-name">{d.name}</span>{" "}
            <Badge tone={driverTone(d.state)}>{t(`driver_states.${d.state}`)}</Badge>
            {d.devices.length ? <span class="muted"> {t("gateways.devices", { ok, total: d.devices.length })}</span> : null}
            {bad.length ? <span class="bad-devices">{bad.map((x) => `${x.id}: ${x.state}`).join("，")}</span> : null}
          </li>
        );
      })}
    </ul>
  );
}

function Config(props: { gateway: string; config: GatewayRow["config"];
                 remote: GatewayRow["remote_config"] }) {
  const c = props.config;
  const r = props.remote;
  const access = !c ? null : c.current
    ? <Badge tone="ok">{t("gateways.config_current", { version: c.wanted })}</Badge>
    : <Badge tone="warn">{t("gateways.config_behind", { confirmed: c.confirmed, wanted: c.wanted })}</Badge>;
  // The gateway's own configuration, desired against running, linked to its config page.
  const remote = !r || r.desired_version === null ? null : (
    <a href={`#/config/${encodeURIComponent(props.gateway)}`} class="remote-config"
       title={r.last_reason ?? undefined}>
      <Badge tone={r.in_sync ? "ok" : r.last_state === "rolled_back" ? "critical" : "warn"}>
        {r.in_sync ? t("gateways.remote_in_sync", { version: r.desired_version })
          : t("gateways.remote_behind", { running: r.running_version ?? "—",
                                          desired: r.desired_version })}
      </Badge>
      {r.last_state && !r.in_sync ? <small> {t(`config_states.${r.last_state}`)}</small> : null}
    </a>
  );
  if (!access && !remote) return <span class="muted">{t("gateways.config_none")}</span>;
  return <span class="config-cell">{remote}{access}</span>;
}

export function GatewayTable(props: { gateways: GatewayRow[]; selected: string | null; now: number;
                                      select: (id: string) => void; fresh: Set<string> }) {
  return (
    <div class="table-wrap">
      <table class="gateways" id="gateways-table">
        <thead>
          <tr>
            <th scope="col">{t("gateways.col_gateway")}</th>
            <th scope="col">{t("gateways.col_state")}</th>
            <th scope="col">{t("gateways.col_last_seen")}</th>
            <th scope="col">{t("gateways.col_drivers")}</th>
            <th scope="col" class="num">{t("gateways.col_outbox")}</th>
            <th scope="col" class="num">{t("gateways.col_cpu")}</th>
            <th scope="col" class="num">{t("gateways.col_memory")}</th>
            <th scope="col">{t("gateways.col_config")}</th>
            <th scope="col">{t("gateways.col_version")}</th>
            <th scope="col"><span class="sr-only">{t("gateways.col_points")}</span></th>
          </tr>
        </thead>
        <tbody>
          {props.gateways.map((g) => {
            const silentS = g.last_seen_at ? (props.now - Date.parse(g.last_seen_at)) / 1000 : null;
            const stale = g.state === "online" && silentS !== null && silentS > STALE_S;
            const classes = [g.id === props.selected ? "selected" : "", props.fresh.has(g.id) ? "fresh" : "",
                             g.state === "offline" ? "is-offline" : ""].join(" ");
            return (
              <tr key={g.id} class={classes} data-gateway={g.id}>
                <th scope="row">
                  <span class="name">{gatewayName(g)}</span>
                  {g.name ? <span class="id">{g.id}</span> : null}
                  {g.location ? <span class="muted small">{g.location}</span> : null}
                </th>
                <td class="col-state">
                  <Badge tone={g.state === "online" ? "ok" : "critical"}>{gatewayStateName(g.state)}</Badge>
                  {g.state_changed_at ? <span class="muted small">{relative(g.state_changed_at, props.now)}</span> : null}
                </td>
                <td title={formatDateTime(g.last_seen_at)}>
                  {g.last_seen_at ? relative(g.last_seen_at, props.now) : "—"}
                  {stale && silentS !== null ? <span class="stale">{t("gateways.stale", { duration: duration(silentS) })}</span> : null}
                </td>
                <td>{g.drivers && g.drivers.length ? <Drivers drivers={g.drivers} />
                  : <span class="muted">{t("gateways.health_none")}</span>}</td>
                <td class="num col-outbox">
                  {g.outbox_depth ?? "—"}
                  {g.outbox_depth && g.outbox_oldest_age_s ? (
                    <span class="muted small">{t("gateways.outbox_oldest", { duration: duration(g.outbox_oldest_age_s) })}</span>
                  ) : null}
                </td>
                <td class="num col-cpu">{g.cpu_percent === null || g.cpu_percent === undefined ? "—" : `${g.cpu_percent.toFixed(1)}%`}</td>
                <td class="num col-memory">{megabytes(g.memory_rss_bytes)}</td>
                <td><Config gateway={g.id} config={g.config} remote={g.remote_config} /></td>
                <td class="col-version">{g.agent_version ?? "—"}</td>
                <td>
                  <button type="button" class={g.id === props.selected ? "primary" : ""}
                          aria-pressed={g.id === props.selected}
                          aria-label={t("gateways.selected", { name: gatewayName(g) })}
                          onClick={() => props.select(g.id)}>
                    {t("gateways.show_points")} {g.points?.length ?? 0}
                  </button>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
