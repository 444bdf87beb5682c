// The shapes of GET /api/v1/stats (docs/api.md, "Statistics").
export interface Tally {
  opened?: number;   // per grid and overall
  handled?: number;  // per person: incidents they accepted or resolved
  accepted: number;
  accept_mean_s: number | null;
  accept_median_s: number | null;
  accept_p90_s: number | null;
  accepted_in_time: number;
  completed: number;
  complete_mean_s: number | null;
  complete_median_s: number | null;
  complete_p90_s: number | null;
  completed_in_time: number;
  missed_target: number;
  missed_rate: number | null;
}

export interface GridRow extends Tally { grid: string | null; grid_name: string | null }
export interface PersonRow extends Tally { username: string; name: string | null }
export interface DayTotal { day: string; opened: number; missed_target: number; missed_rate: number | null }
export interface DayType { day: string; type: string; count: number }
export interface BusyPoint { point: string; point_name: string | null; location: string | null; count: number }

export interface StatsView {
  since: string;
  until: string;
  timezone: string;
  incidents: number;
  targets: { accept_s: number; complete_s: number };
  overall: Tally;
  days: string[];
  per_day: DayType[];
  per_day_totals: DayTotal[];
  per_grid: GridRow[];
  per_person: PersonRow[];
  busiest_points: BusyPoint[];
}
