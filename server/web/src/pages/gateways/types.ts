// The shapes of GET /api/v1/gateways and GET /api/v1/points/sparklines (docs/api.md).
import type { PointPlace } from "../../api";

export interface DriverRow {
  name: string;
  state: string;
  detail: string | null;
  devices: { id: string; state: string }[];
}

export interface GatewayRow {
  id: string;
  name?: string | null;
  location?: string | null;
  state: string;
  state_changed_at?: string | null;
  last_seen_at: string | null;
  agent_version?: string | null;
  health_at?: string | null;
  uptime_s?: number | null;
  cpu_percent?: number | null;
  memory_rss_bytes?: number | null;
  disk_free_bytes?: number | null;
  outbox_depth?: number | null;
  outbox_oldest_age_s?: number | null;
  drivers?: DriverRow[];
  config?: { confirmed: number; confirmed_at: string | null; wanted: number; current: boolean } | null;
  // Desired against running remote configuration (docs/api.md, "Remote configuration").
  remote_config?: { desired_version: number | null; running_version: number | null;
                    in_sync: boolean; last_state: string | null; last_reason: string | null } | null;
  points?: PointPlace[];
}

export interface SparklineSeries {
  point: string;
  field: string;
  latest_at: string | null;
  latest: number | null;
  values: [number, number][];
}

export interface SparklinesView {
  start: string;
  end: string;
  step_s: number;
  points: string[];
  unknown: string[];
  truncated: boolean;
  series: SparklineSeries[];
}

/** The stream's gateway event: the row's own fields, merged into the listed row. */
export interface GatewayMessage { type: "gateway"; event: string; gateway: Partial<GatewayRow> & { id: string } }
