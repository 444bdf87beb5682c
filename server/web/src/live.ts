// The live stream (WS /api/v1/stream): incident changes and pages for this user, pushed by the
// server. The session cookie goes along with the upgrade. Reconnects with a capped, jittered
// backoff so a restarting server is not hammered by every open page at once; after each
// (re)connect listeners get {type: "connected"} so they can re-read what they may have missed.
import { store } from "./store";
import type { Incident } from "./api";

export interface IncidentMessage { type: "incident"; event?: string; incident: Incident }
export interface PageMessage { type: "page"; title: string; incident_id: string; [k: string]: unknown }
export interface ConnectedMessage { type: "connected" }
export type LiveMessage = IncidentMessage | PageMessage | ConnectedMessage |
  { type: string; [k: string]: unknown };

export const connected = store<boolean>(false);
const CLOSE_UNAUTHORIZED = 4401;
const MAX_DELAY_MS = 30_000;

const listeners = new Set<(msg: LiveMessage) => void>();
let socket: WebSocket | null = null;
let retry = 0;
let timer: number | undefined;
let wanted = false;
let onUnauthorized: () => void = () => {};

/** Every message of the stream (and "connected" after each connect); returns unsubscribe. */
export function subscribe(listener: (msg: LiveMessage) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function emit(msg: LiveMessage): void {
  for (const listener of [...listeners]) {
    try { listener(msg); } catch (e) { console.error("live listener failed", e); }
  }
}

export function backoffMs(attempt: number): number {
  return Math.min(MAX_DELAY_MS, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2);
}

function open(): void {
  if (!wanted) return;
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/api/v1/stream`);
  socket = ws;
  ws.onopen = () => {
    retry = 0;
    connected.set(true);
    emit({ type: "connected" });
  };
  ws.onmessage = (ev: MessageEvent) => {
    try { emit(JSON.parse(String(ev.data)) as LiveMessage); } catch { /* not JSON: ignore */ }
  };
  ws.onclose = (ev: CloseEvent) => {
    if (socket !== ws) return;
    socket = null;
    connected.set(false);
    if (!wanted) return;
    if (ev.code === CLOSE_UNAUTHORIZED) { wanted = false; onUnauthorized(); return; }
    timer = window.setTimeout(open, backoffMs(retry++));
  };
}

/** Open the stream (signed in); `unauthorized` runs when the server ends the session. */
export function start(unauthorized: () => void): void {
  onUnauthorized = unauthorized;
  if (wanted) return;
  wanted = true;
  retry = 0;
  open();
}

/** Close it (signed out): no reconnect. */
export function stop(): void {
  wanted = false;
  clearTimeout(timer);
  const ws = socket;
  socket = null;
  connected.set(false);
  if (ws) ws.close();
}
