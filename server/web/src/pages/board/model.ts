// The board's data: the incidents the filters select (server order=urgency), kept current by the
// live stream; the grid tree (counts re-read on changes); the names of points for live pushes.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api } from "../../api";
import type { Incident, PointPlace, RegistryTree, TreeNode } from "../../api";
import * as live from "../../live";
import type { IncidentMessage } from "../../live";
import { apiQuery, gridsUnder, matches } from "./filters";
import type { Filters } from "./filters";

const TREE_REFRESH_DEBOUNCE_MS = 1000;

/** The depth of a tree node: 0 street, 1 community, 2 grid, 3 micro-grid; -1 if unknown. */
export function depthOf(streets: TreeNode[], id: string): number {
  const walk = (nodes: TreeNode[], depth: number): number => {
    for (const node of nodes) {
      if (node.id === id) return depth;
      const below = walk(node.children, depth + 1);
      if (below >= 0) return below;
    }
    return -1;
  };
  return walk(streets, 0);
}

function withNames(inc: Incident, known: Incident | undefined,
                   places: Map<string, PointPlace>): Incident {
  if (inc.point_name !== undefined && inc.point_name !== null) return inc;
  const place = places.get(inc.point);
  const from = known ?? place;
  if (!from) return inc;
  return { ...inc, point_name: from.point_name ?? null, location: from.location ?? null,
           grid_name: from.grid_name ?? null, micro_grid_name: from.micro_grid_name ?? null,
           community_name: from.community_name ?? null, street_name: from.street_name ?? null };
}

export interface BoardData {
  incidents: Incident[];           // as filtered, not yet ordered
  tree: RegistryTree | null;
  loading: boolean;
  error: string;
  fresh: string | null;            // the id that just changed live (highlighted)
  reload: () => void;
  upsert: (inc: Incident) => void; // an action's answer, shown before the push arrives
}

export function useBoardData(filters: Filters): BoardData {
  const [rows, setRows] = useState<Map<string, Incident>>(new Map());
  const [tree, setTree] = useState<RegistryTree | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState("");
  const [fresh, setFresh] = useState<string | null>(null);
  const [generation, setGeneration] = useState(0);
  const places = useRef(new Map<string, PointPlace>());
  const treeTimer = useRef<number | undefined>(undefined);
  const grids = useMemo(() => gridsUnder(tree?.streets ?? [], filters.grid), [tree, filters.grid]);
  const current = useRef({ filters, grids });
  current.current = { filters, grids };

  const loadTree = () => api<RegistryTree>("/api/v1/registry/tree", { background: true })
    .then(setTree).catch(() => {});

  // Names of the caller's points, for pushes that carry ids only (once per sign-in).
  useEffect(() => {
    api<PointPlace[]>("/api/v1/registry/points", { background: true })
      .then((list) => { places.current = new Map(list.map((p) => [p.id, p])); })
      .catch(() => {});
    loadTree();
  }, []);

  useEffect(() => {
    const abort = new AbortController();
    setLoading(true);
    const query = apiQuery(filters, Date.now());
    const depth = tree ? depthOf(tree.streets, filters.grid) : -1;
    // The server filters by a grid (with its micro-grids); a street or community is filtered here.
    if (filters.grid && depth >= 2) query.grid = filters.grid;
    api<Incident[]>("/api/v1/incidents", { query, signal: abort.signal })
      .then((list) => {
        const { grids: under } = current.current;
        setRows(new Map(list.filter((inc) => !under || (inc.grid !== null && under.has(inc.grid)))
          .map((inc) => [inc.id, inc])));
        setError("");
      })
      .catch((e: unknown) => {
        if (e instanceof DOMException && e.name === "AbortError") return;
        setError(e instanceof Error ? e.message : String(e));
      })
      .finally(() => { if (!abort.signal.aborted) setLoading(false); });
    return () => abort.abort();
  }, [filters.state, filters.grid, filters.type, filters.severity, filters.overdue, filters.range,
      filters.closed, generation, tree === null]);

  useEffect(() => live.subscribe((msg) => {
    if (msg.type === "connected") {
      // Anything that happened while the stream was down: read the board again.
      setGeneration((g) => g + 1);
      return;
    }
    if (msg.type !== "incident") return;
    const incoming = (msg as IncidentMessage).incident;
    if (!incoming) return;
    const { filters: f, grids: under } = current.current;
    setRows((before) => {
      const next = new Map(before);
      const named = withNames(incoming, before.get(incoming.id), places.current);
      if (matches(named, f, under, Date.now())) next.set(named.id, named);
      else next.delete(named.id);
      return next;
    });
    setFresh(incoming.id);
    clearTimeout(treeTimer.current);
    treeTimer.current = window.setTimeout(loadTree, TREE_REFRESH_DEBOUNCE_MS);
  }), []);

  const upsert = (inc: Incident) => setRows((before) => {
    const next = new Map(before);
    const named = withNames(inc, before.get(inc.id), places.current);
    const { filters: f, grids: under } = current.current;
    if (matches(named, f, under, Date.now())) next.set(named.id, named); else next.delete(named.id);
    return next;
  });

  return { incidents: [...rows.values()], tree, loading, error, fresh,
           reload: () => setGeneration((g) => g + 1), upsert };
}
