import type { Incident } from "../../api";
import { Badge, severityTone, stateTone } from "../../components/Badge";
import { alarmName, severityName, stateName, t, typeName } from "../../i18n";
import { countdown, formatDateTime, relative, useNow } from "../../time";
import { isOverdue, runningDeadline } from "./urgency";

export function placeName(inc: Incident): string {
  return inc.point_name || inc.point;
}

export function gridLabel(inc: Incident): string {
  if (inc.micro_grid_name && inc.grid_name && inc.micro_grid_name !== inc.grid_name) {
    return `${inc.grid_name} · ${inc.micro_grid_name}`;
  }
  return inc.grid_name || inc.micro_grid_name || inc.grid || t("board.no_grid");
}

function Deadline(props: { inc: Incident; now: number }) {
  const due = runningDeadline(props.inc);
  const left = countdown(due, props.now);
  if (!left) return <span class="muted">—</span>;
  return (
    <span class={left.overdue ? "deadline overdue" : left.seconds < 300 ? "deadline soon" : "deadline"}
          title={formatDateTime(due)}>
      {left.text}
    </span>
  );
}

export function IncidentTable(props: { incidents: Incident[]; selected: string | null;
                                       fresh: string | null; open: (id: string) => void }) {
  const now = useNow(1000);
  return (
    <div class="table-wrap">
      <table id="incidents" class="incidents">
        <caption class="sr-only">{t("board.table_caption")}</caption>
        <thead>
          <tr>
            <th scope="col">{t("board.col_incident")}</th>
            <th scope="col">{t("board.col_point")}</th>
            <th scope="col" class="col-grid">{t("board.col_grid")}</th>
            <th scope="col">{t("board.col_state")}</th>
            <th scope="col">{t("board.col_deadline")}</th>
            <th scope="col" class="col-opened">{t("board.col_opened")}</th>
            <th scope="col" class="col-last">{t("board.col_last_seen")}</th>
          </tr>
        </thead>
        <tbody>
          {props.incidents.map((inc) => {
            const late = isOverdue(inc, now);
            const classes = [inc.id === props.selected ? "selected" : "",
                             inc.id === props.fresh ? "fresh" : "", late ? "is-overdue" : "",
                             `sev-row-${inc.severity}`].filter(Boolean).join(" ");
            return (
              <tr key={inc.id} data-id={inc.id} class={classes} onClick={() => props.open(inc.id)}>
                <td data-label={t("board.col_incident")}>
                  <Badge tone={severityTone(inc.severity)}>{severityName(inc.severity)}</Badge>{" "}
                  <button type="button" class="link" aria-label={`${typeName(inc.type)} ${placeName(inc)}`}
                          onClick={(ev) => { ev.stopPropagation(); props.open(inc.id); }}>
                    {typeName(inc.type)}
                  </button>
                  {inc.count > 1 ? <small class="count" title={t("board.count")}> ×{inc.count}</small> : null}
                </td>
                <td data-label={t("board.col_point")}>
                  <span class="name">{placeName(inc)}</span>
                  {inc.point_name ? <small class="id">{inc.point}</small> : null}
                </td>
                <td data-label={t("board.col_grid")} class="col-grid">{gridLabel(inc)}</td>
                <td data-label={t("board.col_state")}>
                  <Badge tone={stateTone(inc.state)}>{stateName(inc.state)}</Badge>{" "}
                  <span class={`alarm alarm-${inc.alarm}`}>{alarmName(inc.alarm)}</span>
                  {inc.backfilled ? <small class="muted"> {t("board.backfilled")}</small> : null}
                </td>
                <td data-label={t("board.col_deadline")}><Deadline inc={inc} now={now} /></td>
                <td data-label={t("board.col_opened")} class="col-opened"
                    title={formatDateTime(inc.opened_at)}>{relative(inc.opened_at, now)}</td>
                <td data-label={t("board.col_last_seen")} class="col-last"
                    title={formatDateTime(inc.last_seen_at)}>{relative(inc.last_seen_at, now)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
