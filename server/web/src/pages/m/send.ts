// Sending the worker's actions: at once when online, else into the IndexedDB queue, flushed in
// order when the network is back. Each action carries its own id: the server applies it once
// however often a lost answer makes us resend it.
import { ApiError, errorText, request } from "../../api";
import { session } from "../../session";
import { store } from "../../store";
import { enqueue, pending, remove, update } from "./queue";
import type { QueuedAction } from "./queue";
import type { ActionResult, PhotoView } from "./types";

/** How many actions wait to be sent; the page shows it. */
export const queued = store<number>(0);
/** Queued actions the server refused when they were finally sent (shown, then dismissed). */
export const refusedLater = store<string[]>([]);
let flushing = false;

async function uploadPhotos(incidentId: string, photos: Blob[]): Promise<string[]> {
  if (!photos.length) return [];
  const form = new FormData();
  photos.forEach((photo, n) => form.append("file", photo, `photo-${n + 1}.jpg`));
  const headers: Record<string, string> = {};
  const csrf = session.get()?.csrf_token;
  if (csrf) headers["X-CSRF-Token"] = csrf;
  let resp: Response;
  try {
    resp = await fetch(`/api/v1/incidents/${encodeURIComponent(incidentId)}/photos`,
                       { method: "POST", body: form, headers, credentials: "same-origin" });
  } catch (e) {
    throw new ApiError(0, String(e), String(e));
  }
  if (!resp.ok) {
    let detail = "";
    try { detail = String((await resp.json()).detail ?? ""); } catch { /* not JSON */ }
    throw new ApiError(resp.status, errorText(resp.status, detail), detail);
  }
  return ((await resp.json()) as PhotoView[]).map((p) => p.id);
}

async function send(item: QueuedAction): Promise<ActionResult> {
  const ids = await uploadPhotos(item.incidentId, item.photos);
  const body = { ...item.body, action_id: item.id, ...(ids.length ? { photos: ids } : {}) };
  const path = item.action === "checkin" ? "checkin" : item.action;
  const resp = await request(`/api/v1/incidents/${encodeURIComponent(item.incidentId)}/${path}`,
                             { method: "POST", body });
  return (await resp.json()) as ActionResult;
}

function isOffline(e: unknown): boolean {
  return e instanceof ApiError && (e.status === 0 || e.status >= 500);
}

export async function refreshCount(): Promise<void> {
  try { queued.set((await pending()).length); } catch { queued.set(0); }
}

/** Send now, or queue when there is no network. "queued" or the server's answer. */
export async function perform(item: QueuedAction): Promise<ActionResult | "queued"> {
  if (navigator.onLine && !(await pending()).length) {
    try {
      return await send(item);
    } catch (e) {
      if (!isOffline(e)) throw e;
    }
  }
  await enqueue(item);
  await refreshCount();
  void flush();
  return "queued";
}

/** Send what waits, oldest first; stops at the first network failure (tries again later). */
export async function flush(): Promise<number> {
  if (flushing || !navigator.onLine || session.get() === null) return 0;
  flushing = true;
  let sent = 0;
  try {
    for (const item of await pending()) {
      try {
        await send(item);
        sent += 1;
      } catch (e) {
        if (isOffline(e) || (e instanceof ApiError && (e.status === 401 || e.status === 429))) {
          await update({ ...item, lastError: e instanceof Error ? e.message : String(e) });
          break;
        }
        // Refused for good (taken by someone else meanwhile, a wrong code…): say so, drop it.
        refusedLater.set([...refusedLater.get(), e instanceof Error ? e.message : String(e)]);
      }
      await remove(item.id);
    }
  } finally {
    flushing = false;
    await refreshCount();
  }
  return sent;
}

let started = false;

/** Flush when the network comes back, when the stream reconnects, and every half minute. */
export function startFlushing(): void {
  if (started) return;
  started = true;
  window.addEventListener("online", () => void flush());
  window.setInterval(() => void flush(), 30_000);
  void refreshCount().then(() => flush());
}
