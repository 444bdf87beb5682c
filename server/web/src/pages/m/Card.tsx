// One incident as a compact card: where, what, how urgent, the deadline running down.
import { Badge, severityTone, stateTone } from "../../components/Badge";
import { severityName, stateName, t, typeName } from "../../i18n";
import type { Incident } from "../../api";
import { useCountdown } from "../../time";

export function place(incident: Incident): string {
  return [incident.micro_grid_name ?? incident.grid_name, incident.location]
    .filter(Boolean).join(" · ");
}

/** The deadline now running: acceptance while waiting, resolution while handled. */
export function runningDue(incident: Incident): string | null {
  if (incident.state === "new" || incident.state === "returned") return incident.accept_due_at;
  if (incident.state === "accepted") return incident.resolve_due_at;
  return null;
}

export function Deadline({ incident }: { incident: Incident }) {
  const left = useCountdown(runningDue(incident));
  if (!left) return null;
  return <span class={`phone-due${left.overdue ? " overdue" : ""}`}>{left.text}</span>;
}

export function CardHead({ incident }: { incident: Incident }) {
  return (
    <>
      <div class="phone-card-top">
        <Badge tone={severityTone(incident.severity)}>{severityName(incident.severity)}</Badge>
        <Badge tone={stateTone(incident.state)}>{stateName(incident.state)}</Badge>
        <Deadline incident={incident} />
      </div>
      <p class="phone-what">
        <strong>{incident.point_name ?? incident.point}</strong> · {typeName(incident.type)}
      </p>
      <p class="phone-where muted">{place(incident) || t("m.no_place")}</p>
    </>
  );
}
