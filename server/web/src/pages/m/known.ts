// The incidents this page has seen, so a task opened without a network still shows what and
// where (its actions then wait in the queue). Bounded: the newest few hundred.
import type { Incident } from "../../api";

const LIMIT = 300;
const known = new Map<string, Incident>();

export function remember(incident: Incident): void {
  known.delete(incident.id);
  known.set(incident.id, incident);
  if (known.size > LIMIT) known.delete(known.keys().next().value as string);
}

export function recall(id: string): Incident | undefined {
  return known.get(id);
}
