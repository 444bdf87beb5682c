import type { ComponentChildren } from "preact";

export type Tone = "critical" | "major" | "minor" | "ok" | "warn" | "muted" | "info";

/** A small coloured label (severity, state, alarm); colour is never the only cue: it has text. */
export function Badge(props: { tone: Tone; children: ComponentChildren; title?: string }) {
  return <span class={`badge badge-${props.tone}`} title={props.title}>{props.children}</span>;
}

export function severityTone(severity: string): Tone {
  return severity === "critical" ? "critical" : severity === "major" ? "major" : "minor";
}

export function stateTone(state: string): Tone {
  if (state === "new" || state === "returned") return "warn";
  if (state === "accepted") return "info";
  if (state === "resolved") return "ok";
  return "muted";
}
