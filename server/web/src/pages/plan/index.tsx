// The site plan (#/plan, #/plan/<community>): a community's plan image with its points and
// gateways coloured by their state, kept current by the live stream; a click opens a marker's
// incidents. The control room uploads the image and drags the markers into place.
import { useEffect, useState } from "preact/hooks";
import type { MarkerStatus, PlanMarker, PlanTarget } from "../../api";
import { Badge } from "../../components/Badge";
import { EmptyState } from "../../components/EmptyState";
import { t, useLanguage } from "../../i18n";
import type { PageProps } from "../../routes";
import { hrefOf, navigate } from "../../router";
import { MarkerPanel, STATUS_TONE } from "./MarkerPanel";
import { keyOf, usePlan, usePlansIndex } from "./model";
import { Stage } from "./Stage";

const STATUSES: MarkerStatus[] = ["overdue", "alarm", "open", "offline", "normal"];
const ACCEPT = "image/png,image/jpeg,image/svg+xml,.png,.jpg,.jpeg,.svg";

export default function PlanPage({ location }: PageProps) {
  useLanguage();
  const { index, error: indexError } = usePlansIndex();
  const chosen = location.rest[0]
    ?? index?.communities.find((c) => c.plan)?.community ?? index?.communities[0]?.community ?? null;
  const data = usePlan(chosen);
  const [editing, setEditing] = useState(false);
  const [selected, setSelected] = useState<string | null>(null);
  const [notice, setNotice] = useState("");
  const [failure, setFailure] = useState("");
  useEffect(() => { setSelected(null); setEditing(false); }, [chosen]);

  const view = data.view;
  const canEdit = !!view?.can_edit;
  const marker = view?.markers.find((m) => keyOf(m.kind, m.id) === selected) ?? null;

  const attempt = async (work: () => Promise<unknown>, done: string) => {
    setFailure("");
    setNotice("");
    try {
      await work();
      setNotice(done);
    } catch (e) {
      setFailure((e as Error).message);
    }
  };
  const save = (m: PlanMarker | PlanTarget, x: number, y: number) =>
    attempt(() => data.save(m.kind, m.id, x, y), t("plan.saved", { name: m.name || m.id }));
  const place = (u: PlanTarget) => {
    setSelected(keyOf(u.kind, u.id));
    save(u, 0.5, 0.5);
  };
  const upload = (input: HTMLInputElement) => {
    const file = input.files?.[0];
    input.value = "";
    if (file) attempt(() => data.upload(file), t("plan.uploaded"));
  };

  return (
    <div class="plan-page" id="plan-page">
      <header class="plan-head card">
        <h1 id="plan-title">{view ? t("plan.title_of", { name: view.name }) : t("plan.title")}</h1>
        {index && index.communities.length > 1 ? (
          <label class="plan-community">{t("plan.community")}
            <select id="plan-community" value={chosen ?? ""}
                    onChange={(e) => navigate(hrefOf("plan", [(e.target as HTMLSelectElement).value]))}>
              {index.communities.map((c) => (
                <option key={c.community} value={c.community}>{c.street_name} · {c.name}</option>
              ))}
            </select>
          </label>
        ) : null}
        <ul class="plan-legend" aria-label={t("plan.legend")}>
          {STATUSES.map((s) => (
            <li key={s}><span class={`legend-dot status-${s}`} aria-hidden="true" />
              {t(`marker_status.${s}`)}</li>
          ))}
        </ul>
        {canEdit ? (
          <div class="plan-tools">
            <label class="file-button">
              <span>{view?.plan ? t("plan.replace") : t("plan.upload")}</span>
              <input type="file" id="plan-upload" class="sr-only" accept={ACCEPT}
                     onChange={(e) => upload(e.target as HTMLInputElement)} />
            </label>
            {view?.plan ? (
              <button type="button" id="plan-edit" aria-pressed={editing}
                      class={editing ? "primary" : ""} onClick={() => setEditing(!editing)}>
                {editing ? t("plan.done_editing") : t("plan.edit")}</button>
            ) : null}
          </div>
        ) : null}
        <p class="plan-status" role="status" id="plan-notice">{notice}</p>
        {failure || data.error || indexError ? (
          <p class="error" role="alert" id="plan-error">{failure || data.error || indexError}</p>
        ) : null}
      </header>
      {index && index.communities.length === 0 ? <EmptyState text={t("plan.no_community")} /> : null}
      {view && !view.plan ? (
        <EmptyState id="no-plan" text={t(canEdit ? "plan.no_plan_edit" : "plan.no_plan")} />
      ) : null}
      {view && view.plan ? (
        <div class="plan-body">
          <section class="plan-main card" aria-labelledby="plan-title">
            {editing ? <p class="muted plan-edit-hint"><Badge tone="info">{t("plan.editing")}</Badge>{" "}
              {t("plan.hint_drag")}</p> : null}
            <Stage view={view} states={data.states} editing={editing} selected={selected}
                   select={setSelected}
                   moveLocal={(m, x, y) => data.moveLocal(m.kind, m.id, x, y)} save={save} />
            <p class="muted plan-counts">
              {STATUSES.filter((s) => s !== "normal").map((s) => {
                const n = [...data.states.values()].filter((st) => st.status === s).length;
                return n ? <span key={s}><Badge tone={STATUS_TONE[s]}>{t(`marker_status.${s}`)} {n}</Badge> </span>
                  : null;
              })}
            </p>
          </section>
          <MarkerPanel marker={marker} state={selected ? data.states.get(selected) : undefined}
                       editing={editing} unplaced={view.unplaced} place={place}
                       remove={(m) => { setSelected(null);
                                        attempt(() => data.remove(m.kind, m.id), t("plan.removed")); }}
                       close={() => setSelected(null)} />
        </div>
      ) : null}
    </div>
  );
}
