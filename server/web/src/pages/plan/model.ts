// The plan page's data: the communities the caller sees, one community's plan with its markers,
// and every marker's state — read once, then re-read when the live stream says something
// happened to a point or gateway on the plan (or after a reconnect).
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../../api";
import type {
  MarkerKind, MarkerState, PlanMarker, PlanMeta, PlanStateView, PlanView, PlansIndex,
} from "../../api";
import * as live from "../../live";
import type { IncidentMessage } from "../../live";

const STATE_DEBOUNCE_MS = 250;  // a burst of pushes costs one read

export const keyOf = (kind: MarkerKind, id: string) => `${kind}:${id}`;

export function usePlansIndex(): { index: PlansIndex | null; error: string } {
  const [index, setIndex] = useState<PlansIndex | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    api<PlansIndex>("/api/v1/plans").then(setIndex).catch((e: Error) => setError(e.message));
  }, []);
  return { index, error };
}

export interface PlanData {
  view: PlanView | null;
  states: Map<string, MarkerState>;
  error: string;
  loading: boolean;
  reload: () => Promise<void>;
  /** Where a marker is being dragged to, before it is saved (shown at once). */
  moveLocal: (kind: MarkerKind, id: string, x: number, y: number) => void;
  save: (kind: MarkerKind, id: string, x: number, y: number) => Promise<void>;
  remove: (kind: MarkerKind, id: string) => Promise<void>;
  upload: (file: File) => Promise<PlanMeta>;
}

export function usePlan(community: string | null): PlanData {
  const [view, setView] = useState<PlanView | null>(null);
  const [states, setStates] = useState<Map<string, MarkerState>>(new Map());
  const [error, setError] = useState("");
  const [loading, setLoading] = useState(false);
  const timer = useRef<number | undefined>(undefined);
  const watched = useRef(new Set<string>());  // ids of the points and gateways on the plan

  const path = community ? `/api/v1/plans/${encodeURIComponent(community)}` : "";
  const applyStates = (list: MarkerState[]) =>
    setStates(new Map(list.map((s) => [keyOf(s.kind, s.id), s])));

  const reload = async () => {
    if (!path) return;
    setLoading(true);
    try {
      const body = await api<PlanView>(path);
      setView(body);
      applyStates(body.states);
      // A point's gateway too: its going offline changes the point's colour.
      watched.current = new Set(body.markers.flatMap((m) => (m.gateway ? [m.id, m.gateway] : [m.id])));
      setError("");
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setLoading(false);
    }
  };

  const readStates = () => {
    clearTimeout(timer.current);
    timer.current = window.setTimeout(() => {
      api<PlanStateView>(`${path}/state`, { background: true })
        .then((body) => applyStates(body.markers)).catch(() => {});
    }, STATE_DEBOUNCE_MS);
  };

  useEffect(() => {
    setView(null);
    setStates(new Map());
    if (!path) return;
    reload();
    const unsubscribe = live.subscribe((msg) => {
      if (msg.type === "connected") { readStates(); return; }
      if (msg.type !== "incident") return;
      const inc = (msg as IncidentMessage).incident;
      if (inc && (watched.current.has(inc.point) || watched.current.has(inc.gateway))) readStates();
    });
    return () => { unsubscribe(); clearTimeout(timer.current); };
  }, [path]);

  const moveLocal = (kind: MarkerKind, id: string, x: number, y: number) => {
    setView((current) => current && {
      ...current,
      markers: current.markers.map((m) => (m.kind === kind && m.id === id ? { ...m, x, y } : m)),
    });
  };

  const save = async (kind: MarkerKind, id: string, x: number, y: number) => {
    const placed = await api<PlanMarker>(`${path}/markers/${kind}/${encodeURIComponent(id)}`,
                                         { method: "PUT", body: { x, y } });
    setView((current) => {
      if (!current) return current;
      const others = current.markers.filter((m) => !(m.kind === kind && m.id === id));
      return { ...current, markers: [...others, placed],
               unplaced: current.unplaced.filter((u) => !(u.kind === kind && u.id === id)) };
    });
    if (!watched.current.has(id)) {
      watched.current.add(id);
      readStates();
    }
  };

  const remove = async (kind: MarkerKind, id: string) => {
    await api<null>(`${path}/markers/${kind}/${encodeURIComponent(id)}`, { method: "DELETE" });
    await reload();
  };

  const upload = async (file: File) => {
    const meta = await api<PlanMeta>(`${path}/image`, { method: "PUT", raw: file });
    await reload();
    return meta;
  };

  return { view, states, error, loading, reload, moveLocal, save, remove, upload };
}
