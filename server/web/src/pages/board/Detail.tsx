// One incident: what, where, its state and deadline, the snapshot, the point's chart, the pages
// sent and read, the actions the viewer's role allows now, and its history.
import { Fragment } from "preact";
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, api } from "../../api";
import type { Incident, IncidentDetail, PageSent, Transition } from "../../api";
import { Badge, severityTone, stateTone } from "../../components/Badge";
import {
  actionName, alarmName, channelName, levelName, pageStatusName, roleName, severityName, stateName, t, typeName, useLanguage,
} from "../../i18n";
import * as live from "../../live";
import type { IncidentMessage } from "../../live";
import { formatDateTime, formatShort, relative, useCountdown, useNow } from "../../time";
import { CloseDialog, needsReason } from "./CloseDialog";
import { GridLabel, placeName } from "./IncidentTable";
import { SeriesChart } from "./SeriesChart";
import { runningDeadline } from "./urgency";

function Field(props: { name: string; children: ComponentChildren }) {
  return (<><dt>{props.name}</dt><dd>{props.children}</dd></>);
}

function Snapshot(props: { id: string; generation: string }) {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    // Fetched rather than <img src>: the request goes through the same session checks.
    let created: string | null = null;
    let gone = false;
    fetch(`/api/v1/incidents/${encodeURIComponent(props.id)}/snapshot`, { credentials: "same-origin" })
      .then(async (resp) => {
        if (!resp.ok || gone) return;
        created = URL.createObjectURL(await resp.blob());
        if (!gone) setUrl(created);
      })
      .catch(() => {});
    return () => { gone = true; if (created) URL.revokeObjectURL(created); setUrl(null); };
  }, [props.id, props.generation]);
  if (!url) return null;
  return (
    <figure class="snapshot">
      <img id="detail-snapshot" src={url} alt={t("board.snapshot_alt")} />
      <figcaption>{t("board.snapshot_caption")}</figcaption>
    </figure>
  );
}

function Deadline(props: { inc: Incident }) {
  const left = useCountdown(runningDeadline(props.inc));
  if (!left) return <>—</>;
  return <span class={left.overdue ? "deadline overdue" : "deadline"}>{left.text}</span>;
}

/** Every page sent about the incident: to whom, how, delivered or not, read or not. */
function Pages(props: { pages: PageSent[] }) {
  return (
    <section aria-labelledby="pages-title" class="pages">
      <h3 id="pages-title">{t("board.pages")}</h3>
      {props.pages.length ? (
        <table class="reads" id="pages-sent">
          <thead><tr>
            <th scope="col">{t("board.read_who")}</th><th scope="col">{t("board.read_channel")}</th>
            <th scope="col">{t("board.page_status")}</th><th scope="col">{t("board.page_sent_at")}</th>
            <th scope="col">{t("board.page_read")}</th>
          </tr></thead>
          <tbody>
            {props.pages.map((p, i) => (
              <tr key={i}>
                <td>{p.name || p.recipient}{p.name ? <small class="id">{p.recipient}</small> : null}</td>
                <td>{channelName(p.channel)}</td>
                <td class={p.status === "failed" ? "error" : ""}>{pageStatusName(p.status)}</td>
                <td>{formatShort(p.sent_at ?? p.created_at)}</td>
                <td>{p.read_at ? <span class="read">✓ {formatShort(p.read_at)}</span>
                                : <span class="muted">{t("board.unread")}</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : <p class="muted">{t("board.no_pages")}</p>}
    </section>
  );
}

export function Detail(props: { id: string; close: () => void; changed: (inc: Incident) => void }) {
  useLanguage();
  const now = useNow(30_000);
  const [inc, setInc] = useState<IncidentDetail | null>(null);
  const [pages, setPages] = useState<PageSent[]>([]);
  const [error, setError] = useState("");
  const [note, setNote] = useState("");
  const [photos, setPhotos] = useState("");
  const [busy, setBusy] = useState(false);
  const [asking, setAsking] = useState<{ action: string } | null>(null);
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    const abort = new AbortController();
    api<IncidentDetail>(`/api/v1/incidents/${encodeURIComponent(props.id)}`, { signal: abort.signal })
      .then((found) => { setInc(found); setError(""); })
      .catch((e: unknown) => {
        if (e instanceof DOMException && e.name === "AbortError") return;
        setError(e instanceof Error ? e.message : String(e));
      });
    api<PageSent[]>(`/api/v1/incidents/${encodeURIComponent(props.id)}/pages`,
                    { signal: abort.signal, background: true })
      .then(setPages).catch(() => {});
    return () => abort.abort();
  }, [props.id, generation]);

  useEffect(() => { setInc(null); setNote(""); setPhotos(""); setError(""); }, [props.id]);

  // Live: this incident changed (an escalation, another person's action, the device): re-read.
  useEffect(() => live.subscribe((msg) => {
    if (msg.type === "incident" && (msg as IncidentMessage).incident?.id === props.id) {
      setGeneration((g) => g + 1);
    }
  }), [props.id]);

  async function act(action: string, extra: Record<string, unknown> = {}) {
    if (!inc) return;
    setBusy(true);
    setError("");
    try {
      const answer = await api<{ incident: Incident }>(
        `/api/v1/incidents/${encodeURIComponent(inc.id)}/${action}`,
        { method: "POST", body: { note, photos: photos.split("\n").map((p) => p.trim()).filter(Boolean),
                                  ...extra } });
      setNote("");
      setPhotos("");
      setAsking(null);
      props.changed(answer.incident);
    } catch (e) {
      if (e instanceof ApiError && e.status === 400 && e.detail.includes("reason") && !extra.reason) {
        setAsking({ action });  // the server wants a reason: ask for it
      } else {
        setAsking(null);  // refused even so (e.g. this type closes only once the alarm clears)
        setError(e instanceof Error ? e.message : String(e));
      }
    } finally {
      setBusy(false);
      setGeneration((g) => g + 1);
    }
  }

  function press(action: string, extra: Record<string, unknown> = {}) {
    if (inc && needsReason(inc, action, extra)) setAsking({ action });
    else void act(action, extra);
  }

  return (
    <section id="detail" class="detail card" aria-labelledby="detail-title">
      <header class="detail-head">
        <h2 id="detail-title">
          {inc ? `${typeName(inc.type)} · ${placeName(inc)}` : t("app.loading")}
        </h2>
        <button type="button" id="detail-close" onClick={props.close}>{t("app.close")}</button>
      </header>
      <p class="muted id-line"><span>{t("board.id")}</span> <span id="detail-id">{props.id}</span></p>
      {error ? <p id="action-error" class="error" role="alert">{error}</p> : null}
      {inc ? (
        <>
          <dl id="detail-fields" class="fields">
            <Field name={t("board.col_incident")}>
              <Badge tone={severityTone(inc.severity)}>{severityName(inc.severity)}</Badge>{" "}
              {typeName(inc.type)} <small class="muted">{t("board.level", { level: levelName(inc.level) })}</small>
            </Field>
            <Field name={t("board.col_point")}>
              {placeName(inc)}{inc.location ? ` · ${inc.location}` : ""} <small class="id">{inc.point}</small>
            </Field>
            <Field name={t("board.col_grid")}>
              <GridLabel inc={inc} />{inc.community_name ? ` · ${inc.community_name}` : ""}
            </Field>
            <Field name={t("board.col_state")}>
              <Badge tone={stateTone(inc.state)}>{stateName(inc.state)}</Badge>
              {inc.accepted_by ? <small> {t("board.accepted_by", { who: inc.accepted_by })}</small> : null}
            </Field>
            <Field name={t("board.alarm")}>
              <span class={`alarm alarm-${inc.alarm}`}>{alarmName(inc.alarm)}</span>{" "}
              {inc.value !== null ? `${inc.value}${inc.unit ?? ""}` : ""}
              {inc.threshold !== null && inc.threshold !== undefined
                ? ` (${t("board.chart_threshold")} ${inc.threshold}${inc.unit ?? ""})` : ""}
              <small class="muted"> ×{inc.count}</small>
            </Field>
            <Field name={t("board.col_opened")}>
              {formatDateTime(inc.opened_at)} <small class="muted">{relative(inc.opened_at, now)}</small>
            </Field>
            <Field name={t("board.col_deadline")}><Deadline inc={inc} /></Field>
            {inc.suppressed ? <Field name={t("board.suppressed")}>{inc.suppressed}</Field> : null}
            {inc.previous_id ? <Field name={t("board.reopens")}>{inc.previous_id}</Field> : null}
          </dl>
          {inc.actions.length ? (
            <form class="act" onSubmit={(e) => e.preventDefault()} aria-label={t("board.actions")}>
              <label>{t("board.note")}
                <textarea id="action-note" rows={2} value={note}
                          onInput={(e) => setNote(e.currentTarget.value)} />
              </label>
              <label>{t("board.photos")}
                <textarea id="action-photos" rows={1} value={photos}
                          onInput={(e) => setPhotos(e.currentTarget.value)} />
              </label>
              <div id="actions" class="actions">
                {inc.actions.map((name) => (
                  <Fragment key={name}>
                    <button type="button" disabled={busy}
                            class={name === "accept" || name === "verify" || name === "resolve" ? "primary" : ""}
                            onClick={() => press(name)}>{actionName(name)}</button>
                    {name === "verify" ? (
                      <button type="button" key="rework" disabled={busy}
                              onClick={() => press("verify", { passed: false })}>{t("board.rework")}</button>
                    ) : null}
                  </Fragment>
                ))}
              </div>
            </form>
          ) : <div id="actions" class="actions" />}
          <Snapshot id={inc.id} generation={inc.last_seen_at + String(generation > 0)} />
          <SeriesChart incident={inc} />
          <Pages pages={pages} />
          <section aria-labelledby="history-title">
            <h3 id="history-title">{t("board.history")}</h3>
            <ol id="history" class="history">
              {withReads(inc.history, pages).map((h, i) => "read_at" in h ? (
                <li key={`read-${i}`} class="history-read">
                  <time dateTime={h.read_at ?? ""}>{formatDateTime(h.read_at ?? "")}</time>{" "}
                  <strong>{t("board.read_event")}</strong>
                  {" · "}{h.name ?? h.recipient}
                  <small class="muted"> ({channelName(h.channel)})</small>
                </li>
              ) : (
                <li key={i}>
                  <time dateTime={h.at}>{formatDateTime(h.at)}</time>{" "}
                  <strong>{actionName(h.action)}</strong>
                  {h.from_state && h.from_state !== h.to_state
                    ? ` ${stateName(h.from_state)} → ${stateName(h.to_state)}` : ""}
                  {" · "}{h.actor === "system" ? t("board.system") : h.actor}
                  {h.role ? <small class="muted"> ({roleName(h.role)})</small> : null}
                  {h.note ? `：${h.note}` : ""}
                  {typedPhotos(h) ? ` ${t("board.photo_count", { n: typedPhotos(h) })}` : ""}
                  {uploadedPhotos(h).length > 0 && (
                    <span class="history-photos">
                      {uploadedPhotos(h).map((link) => (
                        <a key={link.url} href={link.url} target="_blank" rel="noopener">
                          <img src={link.thumbnail_url ?? link.url}
                               alt={t("board.photo_count", { n: 1 })} />
                        </a>
                      ))}
                    </span>
                  )}
                </li>
              ))}
            </ol>
          </section>
          <CloseDialog open={asking !== null} action={asking?.action ?? "verify"} busy={busy}
                       cancel={() => setAsking(null)}
                       submit={(reason) => act(asking?.action ?? "verify", { reason })} />
        </>
      ) : null}
    </section>
  );
}

/** Photos uploaded to the server (shown as thumbnails); the rest are links typed as text. */
/** The history with each page's reading in time order: who opened their page, and how. */
function withReads(history: Transition[], pages: PageSent[]): (Transition | PageSent)[] {
  const reads = pages.filter((p) => p.read_at !== null);
  const at = (item: Transition | PageSent) => ("read_at" in item ? item.read_at ?? "" : item.at);
  return [...history, ...reads].sort((a, b) => Date.parse(at(a)) - Date.parse(at(b)));
}

function uploadedPhotos(h: Transition) {
  return (h.photo_links ?? []).filter((link) => link.thumbnail_url);
}

function typedPhotos(h: Transition): number {
  return h.photos.length - uploadedPhotos(h).length;
}
