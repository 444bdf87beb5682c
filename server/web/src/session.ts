// Who is signed in, and the two ways out. The session itself is the httpOnly cookie; this
// keeps only what the page shows (name, role) and the CSRF token (api.ts sends it).
import { ApiError, api, request, setCsrfToken, setUnauthorizedHandler } from "./api";
import type { DisplaySettings, SessionView } from "./api";
import { loadLanguage, preferredLanguage, t } from "./i18n";
import * as live from "./live";
import { store } from "./store";
import { timezone } from "./time";

export const session = store<SessionView | null>(null);
/** Why the person is looking at the sign-in form (empty when they signed out themselves). */
export const signedOutReason = store<string>("");
export const display = store<DisplaySettings | null>(null);

function ended(): void {
  if (session.get() === null) return;
  signOutHere(t("app.session_ended"));
}

function signedIn(view: SessionView): void {
  setCsrfToken(view.csrf_token);
  signedOutReason.set("");
  session.set(view);
  live.start(ended);
}

/** Only this page's state: the server side was ended by a button, or ended already. */
export function signOutHere(reason = ""): void {
  live.stop();
  setCsrfToken(null);
  session.set(null);
  signedOutReason.set(reason);
}

/** Display settings, the language and any live session (a reload, a link from a message). */
export async function boot(): Promise<void> {
  setUnauthorizedHandler(ended);
  let settings: DisplaySettings = { timezone: "Asia/Shanghai", utc_offset: "+08:00",
                                    language: "zh-CN", languages: ["zh-CN", "en"] };
  try { settings = await api<DisplaySettings>("/api/v1/settings/display"); } catch { /* defaults */ }
  display.set(settings);
  timezone.set(settings.timezone);
  await loadLanguage(preferredLanguage(settings.language));
  try {
    const resp = await fetch("/api/v1/auth/session", { credentials: "same-origin" });
    if (resp.ok) await afterSignIn((await resp.json()) as SessionView);
  } catch { /* the form then */ }
}

async function afterSignIn(view: SessionView): Promise<void> {
  const lang = preferredLanguage(display.get()?.language ?? "zh-CN", view.username);
  await loadLanguage(lang).catch(() => {});
  signedIn(view);
}

/** The form's sign-in: resolves to an error text to show, or null when signed in. */
export async function signIn(username: string, password: string): Promise<string | null> {
  let resp: Response;
  try {
    resp = await fetch("/api/v1/auth/session", {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password }),
    });
  } catch {
    return t("app.unreachable");
  }
  if (resp.status === 429) {
    return t("login.throttled", { seconds: resp.headers.get("Retry-After") ?? "?" });
  }
  if (resp.status === 403) return t("login.cross_site");
  if (!resp.ok) return t("login.wrong");
  await afterSignIn((await resp.json()) as SessionView);
  return null;
}

async function endSession(path: string, method: "DELETE" | "POST"): Promise<void> {
  try { await request(path, { method }); } catch (e) {
    if (!(e instanceof ApiError)) throw e;  // already ended: signed out either way
  }
  signOutHere();
}

export const signOut = () => endSession("/api/v1/auth/session", "DELETE");
export const signOutEverywhere = () => endSession("/api/v1/auth/logout-everywhere", "POST");
