// The per grid and per person tables of the statistics page.
import { t } from "../../i18n";
import { duration } from "../../time";
import { gridLabel } from "./charts";
import type { StatsView, Tally } from "./types";

const time = (seconds: number | null) => (seconds === null ? "—" : duration(seconds));
const rate = (value: number | null) => (value === null ? "—" : `${Math.round(value * 1000) / 10}%`);

function Cells(props: { row: Tally; targets: StatsView["targets"] }) {
  const { row, targets } = props;
  const over = (s: number | null, target: number) => (s !== null && s > target ? "over" : "");
  return (
    <>
      <td class="num">{row.accepted}</td>
      <td class={`num ${over(row.accept_mean_s, targets.accept_s)}`}>{time(row.accept_mean_s)}</td>
      <td class={`num ${over(row.accept_p90_s, targets.accept_s)}`}>{time(row.accept_p90_s)}</td>
      <td class="num">{row.completed}</td>
      <td class={`num ${over(row.complete_mean_s, targets.complete_s)}`}>{time(row.complete_mean_s)}</td>
      <td class={`num ${over(row.complete_p90_s, targets.complete_s)}`}>{time(row.complete_p90_s)}</td>
      <td class="num">{row.missed_target}</td>
      <td class="num">{rate(row.missed_rate)}</td>
    </>
  );
}

function Heads() {
  return (
    <>
      <th scope="col" class="num">{t("stats.col_accepted")}</th>
      <th scope="col" class="num">{t("stats.col_accept_mean")}</th>
      <th scope="col" class="num">{t("stats.col_accept_p90")}</th>
      <th scope="col" class="num">{t("stats.col_completed")}</th>
      <th scope="col" class="num">{t("stats.col_complete_mean")}</th>
      <th scope="col" class="num">{t("stats.col_complete_p90")}</th>
      <th scope="col" class="num">{t("stats.col_missed")}</th>
      <th scope="col" class="num">{t("stats.col_missed_rate")}</th>
    </>
  );
}

interface Row { key: string; name: string; id: string | null; count: number | undefined; tally: Tally }

function TallyTable(props: { id: string; title: string; first: string; count: string; rows: Row[];
                             targets: StatsView["targets"] }) {
  return (
    <section class="card" aria-labelledby={`${props.id}-title`}>
      <h2 id={`${props.id}-title`}>{props.title}</h2>
      <div class="table-wrap">
        <table class="stats-table" id={props.id}>
          <thead><tr><th scope="col">{props.first}</th>
            <th scope="col" class="num">{props.count}</th><Heads /></tr></thead>
          <tbody>
            {props.rows.map((row) => (
              <tr key={row.key}>
                <th scope="row"><span class="name">{row.name}</span>
                  {row.id ? <span class="id">{row.id}</span> : null}</th>
                <td class="num">{row.count}</td>
                <Cells row={row.tally} targets={props.targets} />
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

export function GridTable(props: { stats: StatsView }) {
  const rows = props.stats.per_grid.map((r) => ({
    key: r.grid ?? "", name: gridLabel(r), id: r.grid, count: r.opened, tally: r }));
  return <TallyTable id="stats-grids" title={t("stats.grids_title")} first={t("stats.col_grid")}
                     count={t("stats.col_opened")} rows={rows} targets={props.stats.targets} />;
}

export function PersonTable(props: { stats: StatsView }) {
  const rows = props.stats.per_person.map((r) => ({
    key: r.username, name: r.name || r.username, id: r.username, count: r.handled, tally: r }));
  return <TallyTable id="stats-people" title={t("stats.people_title")} first={t("stats.col_person")}
                     count={t("stats.col_handled")} rows={rows} targets={props.stats.targets} />;
}
