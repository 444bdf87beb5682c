// Apache ECharts on a canvas (no eval, no inline styles in markup: CSP-safe). The chart follows
// its box's size (ResizeObserver) and is disposed with the component.
import { useEffect, useRef } from "preact/hooks";
import * as echarts from "echarts/core";
import { LineChart, BarChart, PieChart } from "echarts/charts";
import {
  GridComponent, TooltipComponent, LegendComponent, MarkLineComponent, MarkPointComponent,
  MarkAreaComponent, DataZoomComponent, TitleComponent,
} from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";
import type { EChartsCoreOption } from "echarts/core";

echarts.use([LineChart, BarChart, PieChart, GridComponent, TooltipComponent, LegendComponent,
             MarkLineComponent, MarkPointComponent, MarkAreaComponent, DataZoomComponent,
             TitleComponent, CanvasRenderer]);

export type ChartOption = EChartsCoreOption;

export function Chart(props: { option: ChartOption; label: string; class?: string; id?: string;
                               onReady?: (chart: echarts.ECharts) => void }) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<echarts.ECharts | null>(null);
  useEffect(() => {
    if (!box.current) return;
    const instance = echarts.init(box.current, undefined, { renderer: "canvas" });
    chart.current = instance;
    const observer = new ResizeObserver(() => instance.resize());
    observer.observe(box.current);
    return () => {
      observer.disconnect();
      instance.dispose();
      chart.current = null;
    };
  }, []);
  useEffect(() => {
    if (!chart.current) return;
    chart.current.setOption(props.option, { notMerge: true });
    props.onReady?.(chart.current);
  }, [props.option]);
  return <div ref={box} id={props.id} class={`chart ${props.class ?? ""}`} role="img"
              aria-label={props.label} />;
}
