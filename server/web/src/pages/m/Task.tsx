// One task on the phone: where it is, then the steps in order — accept, check in at the point
// (scan its label or type the code under it), take photos, resolve; or return / defer with a
// reason. Each step is sent at once, or queued when offline (sent once when back).
import { useEffect, useState } from "preact/hooks";
import { ApiError, api } from "../../api";
import type { Incident, IncidentDetail } from "../../api";
import { actionName, t } from "../../i18n";
import * as live from "../../live";
import { hrefOf } from "../../router";
import { session } from "../../session";
import { useStore } from "../../store";
import { formatShort } from "../../time";
import { CardHead } from "./Card";
import { recall, remember } from "./known";
import { cameraAvailable } from "./pwa";
import { newActionId } from "./queue";
import { Scanner } from "./Scanner";
import { perform } from "./send";
import { refreshUnread } from "./unread";

type Detail = IncidentDetail;
// While the work is open on site: check-in is offered (not once resolved or closed).
const ON_SITE = ["new", "returned", "accepted", "deferred"];

/** What a worker may do by state, for a task shown without a network (the server decides). */
function offlineActions(incident: Incident): string[] {
  if (incident.state === "new" || incident.state === "returned") return ["accept", "return"];
  if (incident.state === "accepted") return ["resolve", "return"];
  return [];
}

export function Task({ id }: { id: string }) {
  const who = useStore(session);
  const [detail, setDetail] = useState<Detail | null>(null);
  const [offline, setOffline] = useState<Incident | null>(null);
  const [error, setError] = useState("");
  const [status, setStatus] = useState("");
  const [scanning, setScanning] = useState(false);
  const [code, setCode] = useState("");
  const [photos, setPhotos] = useState<File[]>([]);
  const [note, setNote] = useState("");
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [checkedIn, setCheckedIn] = useState(false);
  const [queuedHere, setQueuedHere] = useState<string[]>([]);  // sent when back online

  const load = async () => {
    try {
      const found = await api<Detail>(`/api/v1/incidents/${encodeURIComponent(id)}`);
      remember(found);
      setDetail(found);
      setOffline(null);
      void refreshUnread();  // opening it read the page
    } catch (e) {
      const known = recall(id);
      if (known) setOffline(known);
      else setError(e instanceof ApiError ? e.message : String(e));
    }
  };

  useEffect(() => {
    void load();
    return live.subscribe((msg) => {
      if ((msg.type === "incident" && (msg as { incident?: Incident }).incident?.id === id)
          || msg.type === "connected") void load();
    });
  }, [id]);

  const incident: Incident | null = detail ?? offline;
  if (!incident) return <p class="muted">{error || t("app.loading")}</p>;
  const actions = (detail ? detail.actions : offlineActions(incident))
    .filter((a) => !queuedHere.includes(a));
  const history = detail?.history ?? [];
  const mine = who?.username;
  const alreadyIn = checkedIn || history.some((h) => h.action.startsWith("checkin") && h.actor === mine);

  const act = async (action: string, body: Record<string, unknown>, files: File[] = []) => {
    setBusy(true);
    setError("");
    try {
      const answer = await perform({ id: newActionId(), incidentId: id, action, body,
                                     photos: files, createdAt: Date.now() });
      setStatus(answer === "queued" ? t("m.saved_offline") : t("m.done", { action: actionName(
        action === "checkin" ? (body.qr ? "checkin_qr" : "checkin_code") : action) }));
      if (action === "checkin") setCheckedIn(true);
      if (answer === "queued") setQueuedHere([...queuedHere, action]);
      if (action === "resolve") { setPhotos([]); setNote(""); }
      if (action === "return" || action === "defer") setReason("");
      if (answer !== "queued") await load();
      return true;
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
      return false;
    } finally {
      setBusy(false);
    }
  };

  const onSite = ON_SITE.includes(incident.state);
  return (
    <article class="phone-task">
      <a class="phone-back" href={hrefOf("m")}>‹ {t("m.tasks")}</a>
      <div class="phone-card"><CardHead incident={incident} /></div>
      {incident.message && <p class="phone-message">{incident.message}</p>}
      {offline && <p class="phone-note" role="note">{t("m.offline_view")}</p>}
      {status && <p class="phone-status" role="status">{status}</p>}
      {error && <p class="error" role="alert">{error}</p>}

      {actions.includes("accept") && (
        <button type="button" class="primary phone-big" disabled={busy}
                onClick={() => void act("accept", {})}>{t("m.accept")}</button>
      )}

      {onSite && (
        <section class="phone-step" aria-labelledby="m-checkin">
          <h2 id="m-checkin">{t("m.checkin")} {alreadyIn && <span class="phone-ok">✓ {t("m.checked_in")}</span>}</h2>
          {scanning ? (
            <Scanner onClose={() => setScanning(false)} onLabel={(text) => {
              setScanning(false);
              void act("checkin", { qr: text });
            }} />
          ) : cameraAvailable() && (
            <button type="button" class="phone-big" disabled={busy}
                    onClick={() => setScanning(true)}>{t("m.scan")}</button>
          )}
          <form class="phone-code" onSubmit={(e) => {
            e.preventDefault();
            void act("checkin", { code }).then((ok) => ok && setCode(""));
          }}>
            <label>{t("m.code")}
              <input inputMode="numeric" autoComplete="off" maxLength={12} value={code}
                     placeholder="1234 5678" onInput={(e) => setCode(e.currentTarget.value)} />
            </label>
            <button type="submit" disabled={busy || code.replace(/\D/g, "").length !== 8}>
              {t("m.checkin_code")}</button>
          </form>
        </section>
      )}

      {actions.includes("resolve") && (
        <section class="phone-step" aria-labelledby="m-resolve">
          <h2 id="m-resolve">{t("m.resolve_heading")}</h2>
          <label class="phone-photo-button">{t("m.take_photo")}
            <input type="file" accept="image/*" capture="environment" multiple
                   onChange={(e) => setPhotos([...photos, ...Array.from(e.currentTarget.files ?? [])])} />
          </label>
          {photos.length > 0 && (
            <div class="phone-thumbs">
              {photos.map((p) => <img key={p.name + p.size} src={URL.createObjectURL(p)}
                                      alt={t("m.photo")} />)}
            </div>
          )}
          <label>{t("m.note")}
            <textarea rows={2} value={note} onInput={(e) => setNote(e.currentTarget.value)} />
          </label>
          <button type="button" class="primary phone-big" disabled={busy}
                  onClick={() => void act("resolve", { note }, photos)}>
            {t("m.resolve", { n: photos.length })}</button>
        </section>
      )}

      {(actions.includes("return") || actions.includes("defer")) && (
        <section class="phone-step" aria-labelledby="m-handback">
          <h2 id="m-handback">{t("m.handback")}</h2>
          <label>{t("m.reason")}
            <textarea rows={2} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
          </label>
          <div class="phone-row">
            {actions.includes("return") && (
              <button type="button" disabled={busy || !reason.trim()}
                      onClick={() => void act("return", { reason })}>{actionName("return")}</button>
            )}
            {actions.includes("defer") && (
              <button type="button" disabled={busy || !reason.trim()}
                      onClick={() => void act("defer", { reason })}>{actionName("defer")}</button>
            )}
          </div>
        </section>
      )}

      {history.length > 0 && (
        <section class="phone-step" aria-labelledby="m-history">
          <h2 id="m-history">{t("m.history")}</h2>
          <ol class="phone-history">
            {history.map((h, n) => (
              <li key={n}>
                <span class="muted">{formatShort(h.at)}</span> {actionName(h.action)} · {h.actor}
                {h.note && !h.action.startsWith("checkin") && <p>{h.note}</p>}
                {(h.photo_links ?? []).map((link) => (
                  <a key={link.url} href={link.url} target="_blank" rel="noopener">
                    <img class="phone-history-photo" src={link.thumbnail_url ?? link.url}
                         alt={t("m.photo")} />
                  </a>
                ))}
              </li>
            ))}
          </ol>
        </section>
      )}
    </article>
  );
}
