// The statistics page (#/stats?range=30d | range=custom&from=…&to=… &type=… &grid=…): incidents per day
// by type, overdue rate per day, time to accept and to complete per grid against the targets,
// the busiest points, per grid and per person tables, CSV export. Re-read (debounced) when the
// live stream says an incident changed, so a worker's action shows without a reload.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, api, withQuery } from "../../api";
import type { RegistryTree } from "../../api";
import { Chart } from "../../components/Chart";
import { EmptyState } from "../../components/EmptyState";
import { codesOf, t, typeName, useLanguage } from "../../i18n";
import * as live from "../../live";
import type { PageProps } from "../../routes";
import { hrefOf, navigate } from "../../router";
import { formatDateTime, zoneLabel } from "../../time";
import { busiestOption, overdueOption, perDayOption, stepOption } from "./charts";
import { bounds, isDay, rangeOf, WINDOWS } from "./range";
import type { Range } from "./range";
import { Kpis } from "./Kpis";
import { GridTable, PersonTable } from "./tables";
import type { StatsView } from "./types";
import "./stats.css";

const TABLES = ["per_grid", "per_person", "per_day", "per_day_totals", "busiest_points"];
const REFRESH_MS = 3000;  // after a live incident change: one re-read for a burst of changes

/** The grids and micro-grids of the registry tree (streets and communities hold no incidents
 * of their own: the API's grid filter takes a grid, with its micro-grids). */
export function gridChoices(tree: RegistryTree | null): [string, string][] {
  const out: [string, string][] = [];
  for (const street of tree?.streets ?? []) {
    for (const community of street.children) {
      for (const grid of community.children) {
        out.push([grid.id, grid.name]);
        for (const micro of grid.children) out.push([micro.id, `${grid.name} / ${micro.name}`]);
      }
    }
  }
  return out;
}

interface Picked { range: Range; type: string; grid: string }

function Toolbar(props: Picked & { grids: [string, string][]; change: (p: Picked) => void }) {
  const { range, type, grid } = props;
  const pick = (patch: Partial<Picked>) => props.change({ range, type, grid, ...patch });
  const [key, setKey] = useState(range.key);
  const today = formatDateTime(Date.now()).slice(0, 10);  // in the deployment's zone
  const weekAgo = formatDateTime(Date.now() - 6 * 86_400_000).slice(0, 10);
  const [from, setFrom] = useState(range.from || weekAgo);
  const [to, setTo] = useState(range.to || today);
  useEffect(() => {
    setKey(range.key);
    if (range.from) setFrom(range.from);
    if (range.to) setTo(range.to);
  }, [range.key, range.from, range.to]);
  const apply = () => { if (isDay(from) && isDay(to) && from <= to) pick({ range: { key: "custom", from, to } }); };
  return (
    <form class="filters stats-toolbar" aria-label={t("stats.range")}
          onSubmit={(e) => { e.preventDefault(); apply(); }}>
      <label>{t("stats.range")}
        <select id="stats-range" value={key} onChange={(e) => {
          const picked = e.currentTarget.value;
          setKey(picked);  // "custom" waits for its dates
          if (picked !== "custom") pick({ range: { key: picked, from: "", to: "" } });
        }}>
          {Object.keys(WINDOWS).map((k) => <option key={k} value={k}>{t(`stats.range_${k}`)}</option>)}
          <option value="custom">{t("stats.range_custom")}</option>
        </select>
      </label>
      {key === "custom" ? (
        <>
          <label>{t("stats.from")}
            <input type="date" id="stats-from" value={from} required max={to}
                   onInput={(e) => setFrom(e.currentTarget.value)} />
          </label>
          <label>{t("stats.to")}
            <input type="date" id="stats-to" value={to} required min={from}
                   onInput={(e) => setTo(e.currentTarget.value)} />
          </label>
          <button type="submit" class="primary" id="stats-apply">{t("stats.apply")}</button>
        </>
      ) : null}
      <label>{t("stats.type")}
        <select id="stats-type" value={type} onChange={(e) => pick({ type: e.currentTarget.value })}>
          <option value="">{t("stats.any_type")}</option>
          {codesOf("incident_types").map((c) => <option key={c} value={c}>{typeName(c)}</option>)}
        </select>
      </label>
      <label>{t("stats.grid")}
        <select id="stats-grid" value={grid} onChange={(e) => pick({ grid: e.currentTarget.value })}>
          <option value="">{t("stats.any_grid")}</option>
          {props.grids.map(([id, name]) => <option key={id} value={id}>{name}</option>)}
        </select>
      </label>
    </form>
  );
}

function Export(props: { query: Record<string, string> }) {
  const [table, setTable] = useState("per_grid");
  return (
    <div class="stats-export">
      <label>{t("stats.export_table")}
        <select id="export-table" value={table} onChange={(e) => setTable(e.currentTarget.value)}>
          {TABLES.map((name) => <option key={name} value={name}>{t(`stats.table_${name}`)}</option>)}
        </select>
      </label>
      <a class="button-link" id="export-csv" download
         href={withQuery("/api/v1/stats.csv", { ...props.query, table })}>{t("stats.export")}</a>
    </div>
  );
}

export default function Stats({ location }: PageProps) {
  const lang = useLanguage();
  const range = useMemo(() => rangeOf(location.query), [location.query.toString()]);
  const type = location.query.get("type") ?? "";
  const grid = location.query.get("grid") ?? "";
  const [tree, setTree] = useState<RegistryTree | null>(null);
  const [stats, setStats] = useState<StatsView | null>(null);
  const [error, setError] = useState("");
  const [query, setQuery] = useState<Record<string, string>>({});
  const timer = useRef<number | undefined>(undefined);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    const abort = new AbortController();
    const q: Record<string, string> = { ...bounds(range) };
    if (type) q.type = type;
    if (grid) q.grid = grid;
    setQuery(q);
    api<StatsView>("/api/v1/stats", { query: q, signal: abort.signal, background: tick > 0 })
      .then((body) => { setStats(body); setError(""); })
      .catch((e: unknown) => {
        if (e instanceof DOMException && e.name === "AbortError") return;
        setError(e instanceof ApiError || e instanceof Error ? e.message : String(e));
      });
    return () => abort.abort();
  }, [range.key, range.from, range.to, type, grid, tick]);
  useEffect(() => {
    api<RegistryTree>("/api/v1/registry/tree").then(setTree).catch(() => setTree(null));  // names only
  }, []);

  useEffect(() => live.subscribe((msg) => {
    if (msg.type !== "incident" && msg.type !== "connected") return;
    clearTimeout(timer.current);
    timer.current = window.setTimeout(() => setTick((n) => n + 1), REFRESH_MS);
  }), []);
  useEffect(() => () => clearTimeout(timer.current), []);

  const change = (p: Picked) => navigate(hrefOf("stats", [], {
    range: p.range.key, from: p.range.from || undefined, to: p.range.to || undefined,
    type: p.type || undefined, grid: p.grid || undefined }), true);
  const grids = useMemo(() => gridChoices(tree), [tree]);

  const options = useMemo(() => stats && stats.incidents > 0 ? {
    perDay: perDayOption(stats), overdue: overdueOption(stats),
    accept: stepOption(stats, "accept"), complete: stepOption(stats, "complete"),
    busiest: busiestOption(stats),
  } : null, [stats, lang]);

  return (
    <div class="stats-page" id="stats">
      <section class="card stats-head" aria-labelledby="stats-title">
        <div class="stats-title-row">
          <h1 id="stats-title">{t("stats.title")}</h1>
          {stats ? (
            <p class="muted" id="stats-period">{t("stats.period", {
              from: formatDateTime(stats.since), to: formatDateTime(stats.until), zone: zoneLabel() })}</p>
          ) : null}
        </div>
        <div class="stats-controls">
          <Toolbar range={range} type={type} grid={grid} grids={grids} change={change} />
          <Export query={query} />
        </div>
        {error ? <p class="error" role="alert">{error}</p> : null}
      </section>
      {stats ? <Kpis stats={stats} /> : <p class="muted">{t("app.loading")}</p>}
      {stats && stats.incidents === 0 ? <EmptyState id="stats-none" text={t("stats.none")} /> : null}
      {stats && options ? (
        <>
          <div class="stats-charts">
            <section class="card" aria-labelledby="per-day-title">
              <h2 id="per-day-title">{t("stats.per_day_title")}</h2>
              <Chart option={options.perDay} label={t("stats.chart_per_day")} id="chart-per-day" />
            </section>
            <section class="card" aria-labelledby="overdue-title">
              <h2 id="overdue-title">{t("stats.overdue_title")}</h2>
              <Chart option={options.overdue} label={t("stats.chart_overdue")} id="chart-overdue" />
            </section>
            <section class="card" aria-labelledby="accept-title">
              <h2 id="accept-title">{t("stats.accept_title")}</h2>
              <Chart option={options.accept} label={t("stats.chart_accept")} id="chart-accept" />
            </section>
            <section class="card" aria-labelledby="complete-title">
              <h2 id="complete-title">{t("stats.complete_title")}</h2>
              <Chart option={options.complete} label={t("stats.chart_complete")} id="chart-complete" />
            </section>
          </div>
          <div class="stats-tables">
            <section class="card" aria-labelledby="busiest-title">
              <h2 id="busiest-title">{t("stats.busiest_title")}</h2>
              <Chart option={options.busiest} label={t("stats.chart_busiest")} id="chart-busiest" />
            </section>
            <GridTable stats={stats} />
            <PersonTable stats={stats} />
          </div>
        </>
      ) : null}
    </div>
  );
}
