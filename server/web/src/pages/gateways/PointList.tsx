// One gateway's points: each metric's latest value and its last 24 hours as a sparkline, from
// GET /api/v1/points/sparklines?gateway=… (one request for all of them), re-read every minute.
import { useEffect, useState } from "preact/hooks";
import { ApiError, api } from "../../api";
import { EmptyState } from "../../components/EmptyState";
import { t, useLanguage } from "../../i18n";
import { formatDateTime, relative } from "../../time";
import { gatewayName } from "./GatewayTable";
import { Sparkline } from "./Sparkline";
import type { GatewayRow, SparklineSeries, SparklinesView } from "./types";

const REFRESH_MS = 60_000;

const metricName = (field: string) => {
  const name = t(`metrics.${field}`);
  return name === `metrics.${field}` ? field : name;
};

export function PointList(props: { gateway: GatewayRow; now: number }) {
  useLanguage();
  const { gateway } = props;
  const [lines, setLines] = useState<SparklinesView | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    let abort = new AbortController();
    const load = (background: boolean) => {
      abort = new AbortController();
      api<SparklinesView>("/api/v1/points/sparklines", { query: { gateway: gateway.id }, background,
                                                         signal: abort.signal })
        .then((body) => { setLines(body); setError(""); })
        .catch((e: unknown) => {
          if (e instanceof DOMException && e.name === "AbortError") return;
          setError(e instanceof ApiError || e instanceof Error ? e.message : String(e));
        });
    };
    setLines(null);
    load(false);
    const timer = window.setInterval(() => load(true), REFRESH_MS);
    return () => { clearInterval(timer); abort.abort(); };
  }, [gateway.id]);

  const points = gateway.points ?? [];
  const byPoint = new Map<string, SparklineSeries[]>();
  for (const s of lines?.series ?? []) byPoint.set(s.point, [...(byPoint.get(s.point) ?? []), s]);
  return (
    <section class="card" aria-labelledby="points-title" id="points">
      <h2 id="points-title">{t("gateways.selected", { name: gatewayName(gateway) })}</h2>
      {error ? <p class="error" role="alert">{error}</p> : null}
      {points.length === 0 ? <EmptyState text={t("gateways.no_points")} /> : (
        <div class="table-wrap">
          <table class="points" id="points-table">
            <thead>
              <tr>
                <th scope="col">{t("gateways.col_point")}</th>
                <th scope="col">{t("stats.col_grid")}</th>
                <th scope="col" class="num">{t("gateways.col_latest")}</th>
                <th scope="col">{t("gateways.col_latest_at")}</th>
                <th scope="col">{t("gateways.col_trend")}</th>
              </tr>
            </thead>
            <tbody>
              {points.flatMap((p) => {
                const series = byPoint.get(p.id) ?? [];
                const rows = series.length ? series : [null];
                return rows.map((s, i) => (
                  <tr key={`${p.id}/${s?.field ?? ""}`} data-point={p.id}>
                    {i === 0 ? (
                      <th scope="row" rowSpan={rows.length}>
                        <span class="name">{p.point_name || p.id}</span>
                        <span class="id">{p.id}</span>
                        {p.location ? <span class="muted small">{p.location}</span> : null}
                      </th>
                    ) : null}
                    {i === 0 ? <td rowSpan={rows.length}>{p.micro_grid_name || p.grid_name || p.grid}</td> : null}
                    <td class="num latest">
                      {s && s.latest !== null ? (
                        <><span class="metric">{metricName(s.field)}</span> <strong>{s.latest.toFixed(1)}</strong></>
                      ) : <span class="muted">{lines ? t("gateways.no_reading") : t("app.loading")}</span>}
                    </td>
                    <td title={formatDateTime(s?.latest_at)}>{s?.latest_at ? relative(s.latest_at, props.now) : "—"}</td>
                    <td class="trend">
                      {s && s.values.length ? (
                        <Sparkline values={s.values} label={t("gateways.trend_label", {
                          point: p.point_name || p.id, field: metricName(s.field) })} />
                      ) : <span class="muted">—</span>}
                    </td>
                  </tr>
                ));
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
