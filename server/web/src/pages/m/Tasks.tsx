// My tasks: what I was paged about or accepted first, then my grids' by urgency (overdue and
// critical on top); finished work is out of the way. A big accept button on each card.
import { useState } from "preact/hooks";
import { ApiError, api } from "../../api";
import type { Incident } from "../../api";
import { EmptyState } from "../../components/EmptyState";
import { t } from "../../i18n";
import { hrefOf, navigate } from "../../router";
import { CardHead } from "./Card";
import { remember } from "./known";
import { newActionId } from "./queue";
import { perform } from "./send";
import { useLiveList } from "./useLiveList";

const WAITING = ["new", "returned", "deferred"];

export function Tasks() {
  const { items, error, setError, reload } = useLiveList(async () => {
    const found = await api<Incident[]>("/api/v1/incidents",
                                        { query: { order: "mine", limit: 100 }, background: true });
    found.forEach(remember);
    return found;
  }, ["incident", "page", "connected"]);
  const [busy, setBusy] = useState<string | null>(null);

  const accept = async (incident: Incident) => {
    setBusy(incident.id);
    try {
      await perform({ id: newActionId(), incidentId: incident.id, action: "accept", body: {},
                      photos: [], createdAt: Date.now() });
      navigate(hrefOf("m", ["i", incident.id]));
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
      void reload();
    } finally {
      setBusy(null);
    }
  };

  if (items === null) return <p class="muted">{error || t("app.loading")}</p>;
  return (
    <div class="phone-list">
      {error && <p class="error" role="alert">{error}</p>}
      {items.length === 0 && <EmptyState text={t("m.no_tasks")} />}
      {items.map((incident) => (
        <article class={`phone-card${incident.overdue ? " overdue" : ""}`} key={incident.id}
                 data-incident={incident.id}>
          <a class="phone-card-body" href={hrefOf("m", ["i", incident.id])}>
            <CardHead incident={incident} />
          </a>
          {WAITING.includes(incident.state) && (
            <button type="button" class="primary phone-accept" disabled={busy === incident.id}
                    onClick={() => void accept(incident)}>{t("m.accept")}</button>
          )}
        </article>
      ))}
    </div>
  );
}
