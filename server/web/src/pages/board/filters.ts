// The board's filters live in the hash's query (#/board?state=new&grid=g01...), so a filtered
// board can be bookmarked or sent, and the back button undoes a filter.
import type { Incident, TreeNode } from "../../api";
import { FINAL_STATES, isOverdue } from "./urgency";

export interface Filters {
  state: string;      // "" any open one
  grid: string;       // a tree node id (street, community, grid or micro-grid); "" all
  type: string;
  severity: string;
  overdue: boolean;   // only overdue ones
  range: string;      // "" any time, or "1h", "24h", "7d", "30d": opened within
  closed: boolean;    // finished work (closed, invalid) too
}

export const RANGES: Record<string, number> = { "1h": 3600, "24h": 86400, "7d": 7 * 86400,
                                                "30d": 30 * 86400 };

export function filtersOf(query: URLSearchParams): Filters {
  return {
    state: query.get("state") ?? "", grid: query.get("grid") ?? "", type: query.get("type") ?? "",
    severity: query.get("severity") ?? "", overdue: query.get("overdue") === "1",
    range: query.get("range") ?? "", closed: query.get("closed") === "1",
  };
}

export function queryOf(f: Filters): Record<string, string | undefined> {
  return { state: f.state || undefined, grid: f.grid || undefined, type: f.type || undefined,
           severity: f.severity || undefined, overdue: f.overdue ? "1" : undefined,
           range: f.range || undefined, closed: f.closed ? "1" : undefined };
}

/** GET /api/v1/incidents parameters for the filters (the tree node is sent as grid=). */
export function apiQuery(f: Filters, now: number): Record<string, string | boolean | number | undefined> {
  const range = RANGES[f.range];
  return {
    order: "urgency", limit: 500,
    state: f.state || undefined, type: f.type || undefined, severity: f.severity || undefined,
    overdue: f.overdue ? true : undefined, open: f.closed ? false : undefined,
    since: range ? new Date(now - range * 1000).toISOString() : undefined,
  };
}

/** The grid ids under a node (itself included): a street or community names no grid itself. */
export function gridsUnder(streets: TreeNode[], id: string): Set<string> | null {
  if (!id) return null;
  const found = new Set<string>();
  const collect = (node: TreeNode) => { found.add(node.id); node.children.forEach(collect); };
  const walk = (nodes: TreeNode[]) => {
    for (const node of nodes) {
      if (node.id === id) collect(node); else walk(node.children);
    }
  };
  walk(streets);
  return found;
}

/** Whether a live change belongs on the board as filtered (the server filtered the rest). */
export function matches(inc: Incident, f: Filters, grids: Set<string> | null, now: number): boolean {
  if (!f.closed && !f.state && FINAL_STATES.has(inc.state)) return false;
  if (f.state && inc.state !== f.state) return false;
  if (f.type && inc.type !== f.type) return false;
  if (f.severity && inc.severity !== f.severity) return false;
  if (f.overdue && !isOverdue(inc, now)) return false;
  if (grids && (!inc.grid || !grids.has(inc.grid))) return false;
  const range = RANGES[f.range];
  if (range && new Date(inc.opened_at).getTime() < now - range * 1000) return false;
  return true;
}
