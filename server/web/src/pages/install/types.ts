// The shapes of the installation and commissioning routes (docs/api.md, "Commissioning").

export interface InstallableGateway {
  id: string;
  name: string | null;
  community: string | null;
  enrollment: string | null;   // pending | enrolled | revoked; null: not enrolled here
  online: boolean | null;      // null: never heard from
  points: number;
  saved: boolean;
}

/** One device entry of a gateway configuration draft (the edge's config keys, as drafted). */
export type DraftDevice = Record<string, unknown> & { type: string; point?: string };

export interface DraftConfig {
  gateway?: { id: string; [key: string]: unknown };
  devices?: DraftDevice[];
  [key: string]: unknown;
}

export interface RegisteredPoint { id: string; name: string; grid: string; location: string | null }

export interface StoredInstallation {
  gateway: string;
  config: DraftConfig | null;
  saved_by: string | null;
  saved_at: string | null;
  points: RegisteredPoint[];
}

export interface Assignment {
  device: number;
  id: string;
  name: string;
  grid: string;
  location?: string | null;
  thresholds: Record<string, number>;
}

export interface SavedInstallation {
  gateway: string;
  config: DraftConfig;
  registry: Record<string, number>;
  points: Assignment[];
  // The configuration as the gateway's next remote version (null: kept only, with why).
  pushed: { version: number | null; reason: string | null };
}

export interface FirstReading { metric: string; value: number; t: string }

export interface ReportPoint {
  point: string;
  name: string;
  grid: string;
  grid_name: string | null;
  location: string | null;
  first: FirstReading[];
  ok: boolean;
}

export interface Delivery {
  channel: string;
  status: string;
  attempts: number;
  sent_at: string | null;
  error: string | null;
}

export interface CommissioningReport {
  id: string;
  gateway: string;
  installer: string;
  installer_name: string | null;
  points: ReportPoint[];
  readings_error: string | null;
  drill: {
    incident: string | null;
    outcome: "pending" | "reached" | "acknowledged" | "unreached" | string;
    reached_via: string | null;
    reached_at: string | null;
    acknowledged_at: string | null;
    delivery_s: number | null;
    round_trip_s: number | null;
    deliveries: Delivery[];
  };
  verdict: "green" | "red" | "pending" | string;
  reasons: { code: string; params: Record<string, string>; text: string }[];
}
