// A point's last 24 hours as a small ECharts line (no axes), with its latest value beside it.
import { useMemo } from "preact/hooks";
import { Chart } from "../../components/Chart";
import type { ChartOption } from "../../components/Chart";
import { formatShort } from "../../time";

export function Sparkline(props: { values: [number, number][]; label: string }) {
  const option = useMemo<ChartOption>(() => ({
    animation: false,
    grid: { left: 2, right: 2, top: 4, bottom: 4 },
    xAxis: { type: "time", show: false },
    yAxis: { type: "value", show: false, scale: true },
    tooltip: { trigger: "axis", confine: true,
               formatter: (items: { value: [number, number] }[]) => {
                 const [at, value] = items[0]?.value ?? [0, 0];
                 return `${formatShort(at)}  ${value.toFixed(1)}`;
               } },
    series: [{ type: "line", data: props.values, symbol: "none", lineStyle: { width: 1.5, color: "#155eef" },
               areaStyle: { color: "rgba(21, 94, 239, 0.12)" } }],
  }), [props.values]);
  return <Chart option={option} label={props.label} class="sparkline" />;
}
