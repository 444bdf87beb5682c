// The plan image with its markers on top, placed by fractions of the image's size so it scales
// to any screen. A marker is a button: click (or Enter) opens it; while editing it can be
// dragged (pointer) or moved with the arrow keys, and its new place is saved.
import { useRef } from "preact/hooks";
import type { MarkerState, PlanMarker, PlanView } from "../../api";
import { t } from "../../i18n";
import { keyOf } from "./model";

const DRAG_THRESHOLD_PX = 4;  // less is a click, not a move
const KEY_STEP = 0.005;       // arrow key; with Shift five times as far
const KEY_SAVE_DELAY_MS = 400;

const clamp = (v: number) => Math.min(1, Math.max(0, v));
const round = (v: number) => Math.round(v * 10_000) / 10_000;

export function markerName(m: { kind: string; id: string; name?: string | null }): string {
  return m.name || m.id;
}

interface StageProps {
  view: PlanView;
  states: Map<string, MarkerState>;
  editing: boolean;
  selected: string | null;
  select: (key: string | null) => void;
  moveLocal: (m: PlanMarker, x: number, y: number) => void;
  save: (m: PlanMarker, x: number, y: number) => void;
}

interface Drag { key: string; startX: number; startY: number; moved: boolean; x: number; y: number }

export function Stage(props: StageProps) {
  const { view, states, editing } = props;
  const stage = useRef<HTMLDivElement>(null);
  const drag = useRef<Drag | null>(null);
  const keyTimer = useRef<number | undefined>(undefined);
  const plan = view.plan;
  if (!plan) return null;

  const at = (e: PointerEvent): [number, number] => {
    const box = stage.current!.getBoundingClientRect();
    return [round(clamp((e.clientX - box.left) / box.width)),
            round(clamp((e.clientY - box.top) / box.height))];
  };

  const down = (m: PlanMarker, e: PointerEvent) => {
    if (!editing || e.button !== 0) return;
    e.preventDefault();
    (e.currentTarget as HTMLElement).setPointerCapture(e.pointerId);
    drag.current = { key: keyOf(m.kind, m.id), startX: e.clientX, startY: e.clientY,
                     moved: false, x: m.x, y: m.y };
  };
  const move = (m: PlanMarker, e: PointerEvent) => {
    const d = drag.current;
    if (!d || d.key !== keyOf(m.kind, m.id)) return;
    if (!d.moved && Math.hypot(e.clientX - d.startX, e.clientY - d.startY) < DRAG_THRESHOLD_PX) return;
    d.moved = true;
    [d.x, d.y] = at(e);
    props.moveLocal(m, d.x, d.y);
  };
  const up = (m: PlanMarker) => {
    const d = drag.current;
    drag.current = null;
    if (!d || d.key !== keyOf(m.kind, m.id)) return;
    if (d.moved) props.save(m, d.x, d.y);
  };
  const key = (m: PlanMarker, e: KeyboardEvent) => {
    if (!editing) return;
    const step = e.shiftKey ? KEY_STEP * 5 : KEY_STEP;
    const delta: Record<string, [number, number]> = {
      ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    const d = delta[e.key];
    if (!d) return;
    e.preventDefault();
    const x = round(clamp(m.x + d[0])), y = round(clamp(m.y + d[1]));
    props.moveLocal(m, x, y);
    clearTimeout(keyTimer.current);
    keyTimer.current = window.setTimeout(() => props.save(m, x, y), KEY_SAVE_DELAY_MS);
  };

  return (
    <div class={editing ? "plan-stage editing" : "plan-stage"} ref={stage} id="plan-stage">
      <img class="plan-image" src={plan.image_url} width={plan.width} height={plan.height}
           alt={t("plan.image_alt", { name: view.name })} draggable={false} />
      {view.markers.map((m) => {
        const k = keyOf(m.kind, m.id);
        const state = states.get(k);
        const status = state?.status ?? "normal";
        const label = `${t(m.kind === "point" ? "plan.point" : "plan.gateway")} ${markerName(m)}：`
          + t(`marker_status.${status}`)
          + (state && state.open ? ` · ${t("plan.open_count", { n: state.open })}` : "");
        return (
          <button type="button" key={k} id={`marker-${m.kind}-${m.id}`}
                  class={`marker marker-${m.kind} status-${status}`
                    + (props.selected === k ? " selected" : "")}
                  data-status={status} aria-label={label} title={label}
                  aria-pressed={props.selected === k}
                  style={{ left: `${m.x * 100}%`, top: `${m.y * 100}%` }}
                  onPointerDown={(e) => down(m, e)} onPointerMove={(e) => move(m, e)}
                  onPointerUp={() => up(m)} onKeyDown={(e) => key(m, e)}
                  onClick={() => props.select(k)}>
            <span class="marker-dot" aria-hidden="true">{m.kind === "gateway" ? "G" : ""}</span>
            <span class="marker-label" aria-hidden="true">{markerName(m)}</span>
          </button>
        );
      })}
    </div>
  );
}
