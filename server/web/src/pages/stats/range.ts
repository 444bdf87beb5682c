// The statistics page's time range: a rolling window (24 h, 7/30/90 days) or whole calendar days
// in the deployment's zone (not the browser's), kept in the page's hash query.
import { timezone } from "../../time";

export const WINDOWS: Record<string, number> = { "1d": 1, "7d": 7, "30d": 30, "90d": 90 };
export const DEFAULT_WINDOW = "30d";
const DAY_MS = 86_400_000;

export interface Range { key: string; from: string; to: string }  // from/to: YYYY-MM-DD (custom)

export function rangeOf(query: URLSearchParams): Range {
  const key = query.get("range") ?? DEFAULT_WINDOW;
  const from = query.get("from") ?? "";
  const to = query.get("to") ?? "";
  if (key === "custom" && isDay(from) && isDay(to)) return { key, from, to };
  return { key: key in WINDOWS ? key : DEFAULT_WINDOW, from: "", to: "" };
}

export function isDay(value: string): boolean {
  return /^\d{4}-\d{2}-\d{2}$/.test(value) && !Number.isNaN(Date.parse(`${value}T00:00:00Z`));
}

/** The zone's offset from UTC at an instant, in ms (e.g. +8 h for Asia/Shanghai). */
function offsetMs(instant: number, zone: string): number {
  const parts: Record<string, number> = {};
  const format = new Intl.DateTimeFormat("en-US", {
    timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit" });
  for (const p of format.formatToParts(new Date(instant))) {
    if (p.type !== "literal") parts[p.type] = Number(p.value);
  }
  const asUtc = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second);
  return asUtc - Math.floor(instant / 1000) * 1000;
}

/** Midnight at the start of a calendar day in the deployment's zone, as an instant. */
export function zoneMidnight(day: string): Date {
  const naive = Date.parse(`${day}T00:00:00Z`);
  const zone = timezone.get();
  const first = naive - offsetMs(naive, zone);
  return new Date(naive - offsetMs(first, zone));  // again at the guess: right across a DST change
}

/** since/until for the API. */
export function bounds(range: Range, now: number = Date.now()): { since: string; until: string } {
  if (range.key === "custom") {
    const until = zoneMidnight(range.to).getTime() + DAY_MS;  // "to" is inclusive
    return { since: zoneMidnight(range.from).toISOString(), until: new Date(until).toISOString() };
  }
  const days = WINDOWS[range.key] ?? WINDOWS[DEFAULT_WINDOW];
  return { since: new Date(now - days * DAY_MS).toISOString(), until: new Date(now).toISOString() };
}
