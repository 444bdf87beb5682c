// The board's order, the same as the server's order=urgency (api/incident_routes.py), so a
// live change lands where a reload would put it: overdue first, then severity, then the least
// time left on the running deadline (none while resolved or deferred: last); ties newest first.
import type { Incident } from "../../api";

const SEVERITY_RANK: Record<string, number> = { critical: 0, major: 1, minor: 2 };
const WAITING = new Set(["new", "returned"]);
export const FINAL_STATES = new Set(["closed", "invalid"]);

/** The deadline now running: to accept while waiting, to resolve while handled. */
export function runningDeadline(inc: Incident): string | null {
  if (WAITING.has(inc.state)) return inc.accept_due_at;
  if (inc.state === "accepted") return inc.resolve_due_at;
  return null;
}

export function isOverdue(inc: Incident, now: number): boolean {
  const due = runningDeadline(inc);
  return due !== null && new Date(due).getTime() < now;
}

export function byUrgency(now: number): (a: Incident, b: Incident) => number {
  return (a, b) => {
    const overdue = Number(isOverdue(b, now)) - Number(isOverdue(a, now));
    if (overdue) return overdue;
    const severity = (SEVERITY_RANK[a.severity] ?? 3) - (SEVERITY_RANK[b.severity] ?? 3);
    if (severity) return severity;
    const da = runningDeadline(a);
    const db = runningDeadline(b);
    if (da !== db) {
      if (da === null) return 1;
      if (db === null) return -1;
      const diff = new Date(da).getTime() - new Date(db).getTime();
      if (diff) return diff;
    }
    return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
  };
}
