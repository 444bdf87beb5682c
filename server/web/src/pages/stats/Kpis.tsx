// The headline figures of the period: incidents, the share accepted and completed in time, the
// overdue rate, mean times against the targets.
import { t } from "../../i18n";
import { duration } from "../../time";
import type { StatsView } from "./types";

const percent = (n: number, total: number) => (total > 0 ? `${Math.round((n / total) * 1000) / 10}%` : "—");

function Kpi(props: { id: string; label: string; value: string; note?: string; tone?: "bad" | "good" }) {
  return (
    <div class={`kpi ${props.tone ?? ""}`} id={props.id}>
      <span class="kpi-label">{props.label}</span>
      <strong class="kpi-value">{props.value}</strong>
      {props.note ? <span class="kpi-note">{props.note}</span> : null}
    </div>
  );
}

export function Kpis(props: { stats: StatsView }) {
  const { overall, targets } = props.stats;
  const opened = overall.opened ?? 0;
  const overdue = overall.missed_rate;
  const acceptTarget = duration(targets.accept_s);
  const completeTarget = duration(targets.complete_s);
  const late = (mean: number | null, target: number) => (mean !== null && mean > target ? "bad" : "good");
  return (
    <section class="kpis" aria-label={t("stats.title")}>
      <Kpi id="kpi-incidents" label={t("stats.kpi_incidents")} value={String(props.stats.incidents)} />
      <Kpi id="kpi-accepted" label={t("stats.kpi_accepted_in_time")}
           value={percent(overall.accepted_in_time, overall.accepted)}
           note={t("stats.kpi_of", { n: overall.accepted_in_time, total: overall.accepted })} />
      <Kpi id="kpi-completed" label={t("stats.kpi_completed_in_time")}
           value={percent(overall.completed_in_time, overall.completed)}
           note={t("stats.kpi_of", { n: overall.completed_in_time, total: overall.completed })} />
      <Kpi id="kpi-overdue" label={t("stats.kpi_overdue")}
           value={overdue === null ? "—" : `${Math.round(overdue * 1000) / 10}%`}
           note={t("stats.kpi_of", { n: overall.missed_target, total: opened })}
           tone={overdue !== null && overdue > 0 ? "bad" : "good"} />
      <Kpi id="kpi-accept-mean" label={t("stats.kpi_accept_mean")}
           value={overall.accept_mean_s === null ? "—" : duration(overall.accept_mean_s)}
           note={t("stats.kpi_target", { value: acceptTarget })}
           tone={late(overall.accept_mean_s, targets.accept_s)} />
      <Kpi id="kpi-complete-mean" label={t("stats.kpi_complete_mean")}
           value={overall.complete_mean_s === null ? "—" : duration(overall.complete_mean_s)}
           note={t("stats.kpi_target", { value: completeTarget })}
           tone={late(overall.complete_mean_s, targets.complete_s)} />
    </section>
  );
}
