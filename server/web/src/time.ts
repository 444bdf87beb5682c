// Times as people read them: in the deployment's zone (GET /api/v1/settings/display, labelled
// on the page), 24-hour, and relative ("3 分钟前") or as a ticking countdown to a deadline.
import { useEffect, useState } from "preact/hooks";
import { language, t } from "./i18n";
import { store } from "./store";

export const timezone = store<string>("Asia/Shanghai");

function formatter(options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  return new Intl.DateTimeFormat(language.get() === "en" ? "en-GB" : "zh-CN",
                                 { timeZone: timezone.get(), hourCycle: "h23", ...options });
}

function toDate(value: string | number | Date): Date {
  return value instanceof Date ? value : new Date(value);
}

function parts(value: string | number | Date, options: Intl.DateTimeFormatOptions) {
  const found: Record<string, string> = {};
  for (const part of formatter(options).formatToParts(toDate(value))) found[part.type] = part.value;
  return found;
}

/** "2026-12-03 14:03:27" in the deployment's zone. */
export function formatDateTime(value: string | number | Date | null | undefined): string {
  if (value === null || value === undefined || value === "") return "";
  const p = parts(value, { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
                           minute: "2-digit", second: "2-digit" });
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

/** "12-03 14:03" — short, for tables. */
export function formatShort(value: string | number | Date | null | undefined): string {
  if (value === null || value === undefined || value === "") return "";
  const p = parts(value, { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  return `${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

/** "14:03:27". */
export function formatClock(value: string | number | Date): string {
  const p = parts(value, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return `${p.hour}:${p.minute}:${p.second}`;
}

/** The zone's label from the catalogue ("北京时间"), else the IANA name. */
export function zoneLabel(): string {
  const zone = timezone.get();
  const label = t(`zones.${zone}`);
  return label === `zones.${zone}` ? zone : label;
}

/** "3 分钟前" (now is passed so a ticking component re-renders it). */
export function relative(value: string | null | undefined, now: number = Date.now()): string {
  if (!value) return "";
  const seconds = Math.max(0, Math.round((now - toDate(value).getTime()) / 1000));
  if (seconds < 10) return t("relative_time.just_now");
  if (seconds < 60) return t("relative_time.seconds_ago", { n: seconds });
  if (seconds < 3600) return t("relative_time.minutes_ago", { n: Math.floor(seconds / 60) });
  if (seconds < 86400) return t("relative_time.hours_ago", { n: Math.floor(seconds / 3600) });
  return t("relative_time.days_ago", { n: Math.floor(seconds / 86400) });
}

/** "1小时5分" / "4m 10s": the two largest units of a duration. */
export function duration(totalSeconds: number): string {
  let left = Math.max(0, Math.floor(Math.abs(totalSeconds)));
  const units: [string, number][] = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];
  const out: string[] = [];
  for (const [unit, size] of units) {
    const n = Math.floor(left / size);
    left -= n * size;
    if (n > 0 || (out.length === 0 && unit === "s")) out.push(t(`duration.${unit}`, { n }));
    if (out.length === 2) break;
  }
  const sep = language.get() === "en" ? " " : "";
  return out.join(sep);
}

export interface Countdown {
  text: string;
  overdue: boolean;
  seconds: number;
}

/** "剩余 4分10秒" or "已超时 2分" for a deadline, at `now`. */
export function countdown(due: string | null | undefined, now: number = Date.now()): Countdown | null {
  if (!due) return null;
  const seconds = Math.round((toDate(due).getTime() - now) / 1000);
  const overdue = seconds < 0;
  const text = overdue ? t("relative_time.overdue_by", { duration: duration(-seconds) })
                       : t("relative_time.due_in", { duration: duration(seconds) });
  return { text, overdue, seconds };
}

// One shared ticker per interval, so a board of 200 rows sets one timer, not 200.
const tickers = new Map<number, { now: ReturnType<typeof store<number>>; users: number; id: number }>();

/** The current time in ms, re-rendering every `intervalMs`. */
export function useNow(intervalMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    let ticker = tickers.get(intervalMs);
    if (!ticker) {
      const clock = store(Date.now());
      ticker = { now: clock, users: 0, id: window.setInterval(() => clock.set(Date.now()), intervalMs) };
      tickers.set(intervalMs, ticker);
    }
    ticker.users += 1;
    const off = ticker.now.subscribe(setNow);
    return () => {
      off();
      const current = tickers.get(intervalMs);
      if (current && --current.users === 0) {
        clearInterval(current.id);
        tickers.delete(intervalMs);
      }
    };
  }, [intervalMs]);
  return now;
}

/** A countdown to `due` that ticks every second. */
export function useCountdown(due: string | null | undefined): Countdown | null {
  const now = useNow(1000);
  return countdown(due, now);
}
