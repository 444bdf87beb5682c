// The statistics page's ECharts options, built from GET /api/v1/stats: no chart code of our
// own beyond choosing series, axes and the target lines.
import type { ChartOption } from "../../components/Chart";
import { t, typeName } from "../../i18n";
import type { GridRow, StatsView } from "./types";

const PALETTE = ["#155eef", "#d92d20", "#f79009", "#079455", "#7a5af8", "#0e9384", "#dd2590",
                 "#667085", "#b54708", "#1849a9"];
const TARGET = "#b42318";

export const gridLabel = (row: GridRow) => row.grid_name || row.grid || t("stats.unassigned");
const dayLabel = (day: string) => day.slice(5);  // "12-03"
const round = (value: number | null, digits = 1) =>
  value === null ? null : Math.round(value * 10 ** digits) / 10 ** digits;

/** The smallest of 1, 2, 2.5, 5 × 10ⁿ at or above ``value``: an axis end with readable ticks. */
export function niceCeil(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return ([1, 2, 2.5, 5, 10].find((m) => m * power >= value - 1e-9) ?? 10) * power;
}

function base(): ChartOption {
  return {
    animation: false, color: PALETTE,
    grid: { left: 16, right: 24, top: 44, bottom: 16, containLabel: true },
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
    textStyle: { fontFamily: "Noto Sans CJK SC, Noto Sans SC, sans-serif" },
  };
}

/** Incidents per day, one stacked bar series per type; every day of the range on the axis. */
export function perDayOption(stats: StatsView): ChartOption {
  const types = [...new Set(stats.per_day.map((r) => r.type))].sort();
  const index = new Map(stats.days.map((d, i) => [d, i]));
  const series = types.map((type) => {
    const data: (number | null)[] = stats.days.map(() => null);
    for (const row of stats.per_day) {
      const at = index.get(row.day);
      if (row.type === type && at !== undefined) data[at] = row.count;
    }
    return { type: "bar", name: typeName(type), stack: "day", data, barMaxWidth: 28 };
  });
  return {
    ...base(),
    legend: { type: "scroll", top: 0 },
    xAxis: { type: "category", data: stats.days.map(dayLabel) },
    yAxis: { type: "value", minInterval: 1 },
    series,
  };
}

/** Incidents opened per day (bars) and the share that missed a target (line, right axis). */
export function overdueOption(stats: StatsView): ChartOption {
  return {
    ...base(),
    legend: { top: 0 },
    xAxis: { type: "category", data: stats.per_day_totals.map((r) => dayLabel(r.day)) },
    yAxis: [{ type: "value", minInterval: 1 },
            { type: "value", min: 0, max: 100, splitLine: { show: false },
              axisLabel: { formatter: "{value}%" } }],
    series: [
      { type: "bar", name: t("stats.incidents"), data: stats.per_day_totals.map((r) => r.opened),
        itemStyle: { color: "#98a2b3" }, barMaxWidth: 28 },
      { type: "line", name: t("stats.overdue_rate"), yAxisIndex: 1, connectNulls: false,
        data: stats.per_day_totals.map((r) => round(r.missed_rate === null ? null : r.missed_rate * 100)),
        itemStyle: { color: TARGET }, lineStyle: { width: 2 },
        tooltip: { valueFormatter: (v: unknown) => (typeof v === "number" ? `${v}%` : "—") } },
    ],
  };
}

/** Time to a step per grid (mean, median and 90th percentile) against the step's target. */
export function stepOption(stats: StatsView, step: "accept" | "complete"): ChartOption {
  const unit = step === "accept" ? 60 : 3600;  // minutes to accept, hours to complete
  const target = (step === "accept" ? stats.targets.accept_s : stats.targets.complete_s) / unit;
  const rows = stats.per_grid.filter((r) => (step === "accept" ? r.accepted : r.completed) > 0);
  const values = (key: "mean" | "median" | "p90") => rows.map((r) => {
    const seconds = r[`${step}_${key}_s`];
    return round(seconds === null ? null : seconds / unit, 2);
  });
  const highest = Math.max(target, ...values("p90").map((v) => v ?? 0));
  return {
    ...base(),
    legend: { top: 0 },
    xAxis: { type: "category", data: rows.map(gridLabel), axisLabel: { interval: 0 } },
    yAxis: { type: "value", max: niceCeil(highest * 1.1) },
    series: [
      { type: "bar", name: t("stats.mean"), data: values("mean"), barMaxWidth: 32,
        markLine: { symbol: "none", silent: true, data: [{
          yAxis: target, lineStyle: { color: TARGET, type: "dashed", width: 2 },
          label: { formatter: `${t("stats.target")} ${target}`, position: "insideEndTop", color: TARGET } }] } },
      { type: "bar", name: t("stats.median"), data: values("median"), barMaxWidth: 32 },
      { type: "bar", name: t("stats.p90"), data: values("p90"), barMaxWidth: 32 },
    ],
  };
}

/** The busiest points, most incidents at the top. */
export function busiestOption(stats: StatsView): ChartOption {
  const rows = [...stats.busiest_points].reverse();
  return {
    ...base(),
    grid: { left: 16, right: 32, top: 8, bottom: 24, containLabel: true },
    xAxis: { type: "value", minInterval: 1 },
    yAxis: { type: "category", data: rows.map((r) => r.point_name || r.point) },
    series: [{ type: "bar", name: t("stats.incidents"), data: rows.map((r) => r.count),
               itemStyle: { color: "#155eef" }, barMaxWidth: 22,
               label: { show: true, position: "right" } }],
  };
}
