// Beside the plan: the chosen marker (its names, state and open incidents, each a link to the
// board's detail), and for the control room while editing, what is not placed yet.
import { useEffect, useState } from "preact/hooks";
import { api } from "../../api";
import type { Incident, MarkerState, PlanMarker, PlanTarget } from "../../api";
import { Badge, severityTone, stateTone } from "../../components/Badge";
import { severityName, stateName, t, typeName } from "../../i18n";
import { hrefOf } from "../../router";
import { relative } from "../../time";
import { markerName } from "./Stage";

export const STATUS_TONE = {
  overdue: "critical", alarm: "critical", open: "warn", offline: "muted", normal: "ok",
} as const;

function OpenIncidents(props: { ids: string[] }) {
  const [incidents, setIncidents] = useState<Incident[] | null>(null);
  useEffect(() => {
    let gone = false;
    Promise.all(props.ids.map((id) => api<Incident>(`/api/v1/incidents/${id}`).catch(() => null)))
      .then((list) => { if (!gone) setIncidents(list.filter((i): i is Incident => i !== null)); });
    return () => { gone = true; };
  }, [props.ids.join(",")]);
  if (props.ids.length === 0) return <p class="muted" id="marker-no-incidents">{t("plan.no_open")}</p>;
  if (incidents === null) return <p class="muted">{t("app.loading")}</p>;
  return (
    <ul class="marker-incidents" id="marker-incidents">
      {incidents.map((inc) => (
        <li key={inc.id}>
          <a href={hrefOf("board", [inc.id])}>{typeName(inc.type)}</a>{" "}
          <Badge tone={severityTone(inc.severity)}>{severityName(inc.severity)}</Badge>{" "}
          <Badge tone={stateTone(inc.state)}>{stateName(inc.state)}</Badge>
          {inc.overdue ? <> <Badge tone="critical">{t("marker_status.overdue")}</Badge></> : null}
          <small class="muted"> {relative(inc.last_seen_at)}</small>
        </li>
      ))}
    </ul>
  );
}

interface PanelProps {
  marker: PlanMarker | null;
  state: MarkerState | undefined;
  editing: boolean;
  unplaced: PlanTarget[];
  place: (target: PlanTarget) => void;
  remove: (marker: PlanMarker) => void;
  close: () => void;
}

export function MarkerPanel(props: PanelProps) {
  const { marker, state } = props;
  return (
    <aside class="plan-side card" aria-label={t("plan.details")}>
      {marker ? (
        <section id="marker-detail" aria-labelledby="marker-title">
          <div class="detail-head">
            <h2 id="marker-title">{markerName(marker)}</h2>
            <button type="button" class="link" onClick={props.close}>{t("app.close")}</button>
          </div>
          <p class="id-line muted">
            {t(marker.kind === "point" ? "plan.point" : "plan.gateway")} · <span class="id">{marker.id}</span>
          </p>
          <dl class="fields">
            <dt>{t("plan.status")}</dt>
            <dd><Badge tone={STATUS_TONE[state?.status ?? "normal"]}>
              {t(`marker_status.${state?.status ?? "normal"}`)}</Badge>
              {state?.severity ? <> <Badge tone={severityTone(state.severity)}>
                {severityName(state.severity)}</Badge></> : null}</dd>
            {marker.location ? <><dt>{t("plan.location")}</dt><dd>{marker.location}</dd></> : null}
            {marker.grid_name ? <><dt>{t("plan.grid")}</dt>
              <dd>{marker.grid_name}{marker.micro_grid_name ? ` · ${marker.micro_grid_name}` : ""}</dd></> : null}
            {state?.gateway ? <><dt>{t("plan.gateway")}</dt>
              <dd>{state.gateway} · {state.gateway_online === false ? t("gateway_states.offline")
                : state.gateway_online ? t("gateway_states.online") : t("plan.never_seen")}</dd></> : null}
          </dl>
          <h3>{t("plan.open_incidents")}</h3>
          <OpenIncidents ids={state?.incidents ?? []} />
          {props.editing ? (
            <button type="button" id="marker-remove" onClick={() => props.remove(marker)}>
              {t("plan.remove")}</button>
          ) : null}
        </section>
      ) : (
        <p class="muted" id="marker-hint">{t(props.editing ? "plan.hint_edit" : "plan.hint")}</p>
      )}
      {props.editing ? (
        <section aria-labelledby="unplaced-title" class="unplaced">
          <h3 id="unplaced-title">{t("plan.unplaced")} <small>{props.unplaced.length}</small></h3>
          {props.unplaced.length === 0 ? <p class="muted">{t("plan.all_placed")}</p> : (
            <ul id="unplaced-list">
              {props.unplaced.map((u) => (
                <li key={`${u.kind}:${u.id}`}>
                  <span>{markerName(u)} <small class="muted">
                    {t(u.kind === "point" ? "plan.point" : "plan.gateway")}</small></span>
                  <button type="button" onClick={() => props.place(u)}
                          aria-label={`${t("plan.place")} ${markerName(u)}`}>{t("plan.place")}</button>
                </li>
              ))}
            </ul>
          )}
        </section>
      ) : null}
    </aside>
  );
}
