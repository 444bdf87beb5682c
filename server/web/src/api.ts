// Typed calls to the server's HTTP API. The session is an httpOnly cookie this script never
// sees; every request that changes something carries the session's CSRF token
// (from GET /api/v1/auth/session) in X-CSRF-Token. Errors carry the catalogue's words.
import { t } from "./i18n";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly detail: string,
    readonly retryAfter: string | null = null,
  ) {
    super(message);
  }
}

let csrfToken: string | null = null;
let onUnauthorized: () => void = () => {};

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/** What to do when the server says the session is over (401): the shell signs out. */
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

export interface RequestOptions {
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  body?: unknown;
  query?: Record<string, string | number | boolean | null | undefined>;
  /** A timer's request: must not keep an idle session alive. */
  background?: boolean;
  /** A file sent as the body as it is (an upload), with its own type; instead of `body`. */
  raw?: Blob;
  signal?: AbortSignal;
}

export function withQuery(path: string, query: RequestOptions["query"]): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

// Server refusals the page names in the catalogue's words: (status, a phrase of the server's
// English detail) → catalogue key. Anything else: the status's general words and the detail.
const KNOWN_ERRORS: [number, string, string][] = [
  [400, "needs a reason", "errors.close_reason_required"],
  [409, "only once it clears", "errors.close_refused_while_active"],
  [422, "range", "errors.range_too_long"],
  [503, "time series", "errors.series_unavailable"],
];

/** The catalogue's words for an error: a known refusal, else the HTTP status's. */
export function errorText(status: number, detail: string): string {
  for (const [code, phrase, key] of KNOWN_ERRORS) {
    if (status === code && detail.includes(phrase)) return t(key);
  }
  const general = t(`errors.${status}`);
  if (general === `errors.${status}`) return detail || `HTTP ${status}`;
  return detail && status !== 401 ? `${general}（${detail}）` : general;
}

function detailOf(body: unknown): string {
  if (body && typeof body === "object" && "detail" in body) {
    const detail = (body as { detail: unknown }).detail;
    return typeof detail === "string" ? detail : JSON.stringify(detail);
  }
  return "";
}

export async function request(path: string, options: RequestOptions = {}): Promise<Response> {
  const method = options.method ?? "GET";
  const headers: Record<string, string> = {};
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.raw !== undefined) headers["Content-Type"] = options.raw.type || "application/octet-stream";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  if (options.background) headers["X-Gridsense-Background"] = "1";
  let resp: Response;
  try {
    resp = await fetch(withQuery(path, options.query), {
      method, headers, credentials: "same-origin", signal: options.signal,
      body: options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
    });
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    throw new ApiError(0, t("app.unreachable"), String(e));
  }
  if (!resp.ok) {
    let detail = "";
    try { detail = detailOf(await resp.json()); } catch { /* not JSON */ }
    if (resp.status === 401) onUnauthorized();
    throw new ApiError(resp.status, errorText(resp.status, detail), detail,
                       resp.headers.get("Retry-After"));
  }
  return resp;
}

/** GET (or another method) and parse JSON; null for 204. */
export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const resp = await request(path, options);
  return (resp.status === 204 ? null : await resp.json()) as T;
}

// ---- The shapes the server sends (docs/api.md) ----

export interface SessionView {
  username: string;
  name?: string | null;
  role: string;
  csrf_token: string;
  idle_expires_at: string;
  expires_at: string;
}

export interface DisplaySettings {
  timezone: string;
  utc_offset: string;
  language: "zh-CN" | "en";
  languages: string[];
  title?: string | null;
}

/** The registry's names beside the ids (null where it does not know the point). */
export interface PlaceNames {
  point_name?: string | null;
  location?: string | null;
  grid_name?: string | null;
  micro_grid_name?: string | null;
  community_name?: string | null;
  street_name?: string | null;
}

export interface Incident extends PlaceNames {
  id: string;
  point: string;
  grid: string | null;
  gateway: string;
  type: string;
  severity: "minor" | "major" | "critical" | string;
  state: string;
  alarm: "active" | "cleared" | string;
  opened_at: string;
  last_seen_at: string;
  count: number;
  value: number | null;
  threshold?: number | null;
  unit?: string | null;
  message: string;
  backfilled: boolean;
  level: string;
  accept_due_at: string | null;
  resolve_due_at: string | null;
  overdue: boolean;
  accepted_by: string | null;
  previous_id: string | null;
  suppressed: string | null;
}

export interface Transition {
  action: string;
  from_state: string | null;
  to_state: string;
  actor: string;
  role: string | null;
  at: string;
  note: string;
  photos: string[];
  /** One per photo: the image and its thumbnail (null for a link typed as text). */
  photo_links?: { url: string; thumbnail_url: string | null }[];
}

export interface IncidentDetail extends Incident {
  event_ids: string[];
  history: Transition[];
  actions: string[];
}

export interface TreeNode {
  id: string;
  name: string;
  open: number;
  overdue: number;
  children: TreeNode[];
}

export interface RegistryTree {
  streets: TreeNode[];
  unassigned: { open: number; overdue: number } | null;
}

export interface PointPlace extends PlaceNames {
  id: string;
  grid: string | null;
  [extra: string]: unknown;
}

export interface SeriesPoint { t: string; mean: number | null; min: number | null; max: number | null; count: number }
export interface SeriesView {
  point: string; field: string; start: string; end: string; step_s: number; limit: number;
  points: SeriesPoint[];
}

export interface PageRead { username: string; channel: string; read_at: string }
export interface PageSent {
  recipient: string; name: string | null; channel: string; step: string; status: string;
  created_at: string; sent_at: string | null; read_at: string | null;
}

export interface GatewayView {
  id: string;
  state: string;
  last_seen_at: string | null;
  health?: { drivers?: Record<string, { state: string }> } | null;
  points?: PointPlace[];
  [extra: string]: unknown;
}

// ---- Site plans (docs/api.md, "Site plans") ----

export type MarkerKind = "point" | "gateway";
export type MarkerStatus = "overdue" | "alarm" | "open" | "offline" | "normal";

export interface PlanMeta {
  content_type: string; width: number; height: number; size: number; sha256: string;
  uploaded_by: string; uploaded_at: string; image_url: string;
}

export interface CommunityPlan {
  community: string; name: string; street: string; street_name: string; plan: PlanMeta | null;
}

export interface PlansIndex { communities: CommunityPlan[]; can_edit: boolean; tile_url: string | null }

export interface PlanTarget {
  kind: MarkerKind; id: string; name: string | null; location?: string | null;
  gateway?: string | null; grid?: string | null; grid_name?: string | null;
  micro_grid_name?: string | null;
}

export interface PlanMarker extends PlanTarget { x: number; y: number; placed_by: string; placed_at: string }

export interface MarkerState {
  kind: MarkerKind; id: string; status: MarkerStatus; severity: string | null;
  alarm_active: boolean; overdue: boolean; open: number; incidents: string[];
  gateway: string | null; gateway_online: boolean | null;
}

export interface PlanView {
  community: string; name: string; street_name: string; plan: PlanMeta | null; can_edit: boolean;
  tile_url: string | null; markers: PlanMarker[]; unplaced: PlanTarget[]; states: MarkerState[];
}

export interface PlanStateView { community: string; at: string; markers: MarkerState[] }
