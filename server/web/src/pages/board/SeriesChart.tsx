// The point's readings around the incident (GET /api/v1/points/{id}/series): mean with the
// min–max band, the threshold as a line, the opening (and last event) marked.
import { useEffect, useMemo, useState } from "preact/hooks";
import { ApiError, api } from "../../api";
import type { IncidentDetail, SeriesView } from "../../api";
import { Chart } from "../../components/Chart";
import type { ChartOption } from "../../components/Chart";
import { EmptyState } from "../../components/EmptyState";
import { t, typeName, useLanguage } from "../../i18n";
import { formatDateTime, formatShort } from "../../time";

const BEFORE_MS = 60 * 60 * 1000;  // an hour before the opening
const AFTER_MS = 60 * 60 * 1000;   // and after the latest event (not past now)

export function seriesWindow(inc: IncidentDetail, now: number): { from: string; to: string } {
  const opened = new Date(inc.opened_at).getTime();
  const last = new Date(inc.last_seen_at).getTime();
  return { from: new Date(opened - BEFORE_MS).toISOString(),
           to: new Date(Math.min(now, Math.max(last, opened) + AFTER_MS)).toISOString() };
}

export function SeriesChart(props: { incident: IncidentDetail }) {
  const lang = useLanguage();
  const inc = props.incident;
  const [series, setSeries] = useState<SeriesView | null>(null);
  const [span, setSpan] = useState<{ from: string; to: string } | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    const abort = new AbortController();
    const { from, to } = seriesWindow(inc, Date.now());
    setSpan({ from, to });
    setError("");
    api<SeriesView>(`/api/v1/points/${encodeURIComponent(inc.point)}/series`,
                    { query: { from, to }, signal: abort.signal })
      .then(setSeries)
      .catch((e: unknown) => {
        if (e instanceof DOMException && e.name === "AbortError") return;
        setSeries(null);
        setError(e instanceof ApiError && e.status === 404 ? "" : e instanceof Error ? e.message : String(e));
      });
    return () => abort.abort();
  }, [inc.id, inc.point, inc.last_seen_at]);

  const option = useMemo<ChartOption | null>(() => {
    if (!series || series.points.length === 0) return null;
    // The threshold is drawn on the reading's own scale only: a rate (°C/min) or a model's
    // score (no unit) is not a temperature, and the axis would lie.
    const onScale = !!inc.unit && !inc.unit.includes("/");
    const unit = onScale ? inc.unit ?? "" : "";
    const mean = series.points.map((p) => [p.t, p.mean]);
    const low = series.points.map((p) => [p.t, p.min]);
    const band = series.points.map((p) => [p.t, p.max !== null && p.min !== null ? p.max - p.min : null]);
    const marks: object[] = [{ xAxis: inc.opened_at, name: t("board.chart_opened"),
                               label: { formatter: t("board.chart_opened"), color: "#b42318" },
                               lineStyle: { color: "#b42318", type: "solid", width: 2 } }];
    const lines: object[] = [...marks];
    const threshold = onScale ? inc.threshold : null;
    if (threshold !== null && threshold !== undefined) {
      lines.push({ yAxis: inc.threshold, name: t("board.chart_threshold"),
                   label: { formatter: `${t("board.chart_threshold")} ${inc.threshold}${unit}`,
                            position: "insideEndTop", color: "#b54708" },
                   lineStyle: { color: "#b54708", type: "dashed", width: 2 } });
    }
    return {
      animation: false,
      grid: { left: 48, right: 24, top: 28, bottom: 36 },
      // Times in the deployment's zone (ECharts' own header would use the browser's).
      tooltip: { trigger: "axis", formatter: (params: unknown) => {
        const rows = (Array.isArray(params) ? params : [params]) as
          { seriesName: string; value: [string, number | null] }[];
        const shown = rows.filter((r) => r.seriesName === t("board.chart_mean"));
        const at = rows[0]?.value?.[0];
        return [at ? formatDateTime(at) : "", ...shown.map((r) =>
          `${r.seriesName} ${typeof r.value[1] === "number" ? r.value[1].toFixed(2) : "—"}${unit}`)]
          .join("\n");
      } },
      // The whole window, so the opening is marked even where the readings stop before it.
      xAxis: { type: "time", min: span?.from, max: span?.to, axisLabel: { formatter: (v: number) => formatShort(v).slice(6) } },
      yAxis: { type: "value", scale: true, name: unit,
               max: (v: { max: number }) => threshold != null ? Math.max(v.max, threshold) : v.max,
               min: (v: { min: number }) => threshold != null ? Math.min(v.min, threshold) : v.min },
      series: [
        { type: "line", name: "min", data: low, stack: "band", symbol: "none",
          lineStyle: { opacity: 0 }, tooltip: { show: false } },
        { type: "line", name: "range", data: band, stack: "band", symbol: "none",
          lineStyle: { opacity: 0 }, areaStyle: { color: "rgba(21, 94, 239, 0.15)" },
          tooltip: { show: false } },
        { type: "line", name: t("board.chart_mean"), data: mean, symbol: "none", connectNulls: false,
          lineStyle: { color: "#155eef", width: 2 },
          markLine: { symbol: "none", silent: true, data: lines } },
      ],
    } as ChartOption;
  }, [series, span, lang, inc.threshold, inc.opened_at]);

  const label = t("board.chart_label", { type: typeName(inc.type), point: inc.point_name || inc.point,
                                         time: formatDateTime(inc.opened_at) });
  return (
    <section class="series" aria-labelledby="series-title">
      <h3 id="series-title">{t("board.chart_title")}</h3>
      {option ? <Chart option={option} label={label} id="series-chart" /> :
        error ? <p class="error" role="alert">{error}</p> :
        series ? <EmptyState text={t("board.chart_empty")} /> : <p class="muted">{t("app.loading")}</p>}
    </section>
  );
}
