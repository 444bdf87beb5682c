// The resident's phone (#/r): sign in with a one-time code, then the pass — the current
// minute's QR, large, with name and building — and the visitor invitations. A day of tokens
// is cached on the phone, so the pass shows in a basement without signal.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, setCsrfToken } from "../api";
import { t } from "../i18n";
import { Invite } from "./Invite";
import { Qr } from "./Qr";
import { cachedUntil, clearCached, currentToken, loadCached, saveCached, withSkew } from "./tokens";
import type { ResidentPass } from "./tokens";
import { formatDateTime } from "./when";

interface Me { credential: string; name: string; community: string; buildings: string[];
               csrf_token: string }

const REFRESH_BELOW_S = 12 * 3600;  // fetch a new day when less than this is cached

function SignIn({ onDone }: { onDone: (me: Me) => void }) {
  const [code, setCode] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      onDone(await api<Me>("/api/v1/resident/sign-in", { method: "POST", body: { code } }));
    } catch (err) {
      setError(err instanceof ApiError ? (err.detail || err.message) : String(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <form class="pass-card pass-signin" onSubmit={submit}>
      <h1>{t("pass.title")}</h1>
      <p class="pass-hint">{t("pass.sign_in_hint")}</p>
      <label for="pass-code">{t("pass.code")}</label>
      <input id="pass-code" name="code" value={code} autocomplete="one-time-code"
             autocapitalize="characters" spellcheck={false} maxLength={20} required
             placeholder="ABCDE-FGHJK" onInput={(e) => setCode(e.currentTarget.value)} />
      <button type="submit" class="primary pass-big" disabled={busy || !code.trim()}>
        {busy ? t("pass.signing_in") : t("pass.sign_in")}
      </button>
      {error && <p class="pass-note error" role="alert">{error}</p>}
    </form>
  );
}

function PassView({ me, online }: { me: Me | null; online: boolean }) {
  const [pass, setPass] = useState<ResidentPass | null>(() => loadCached(me?.credential));
  const [now, setNow] = useState(() => Date.now() / 1000);
  const [error, setError] = useState("");
  async function refresh() {
    try {
      const fresh = withSkew(await api<ResidentPass>("/api/v1/resident/pass"), Date.now() / 1000);
      setPass(fresh);
      if (me) saveCached(me.credential, fresh);
      setError("");
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 0)) setError(String((err as Error).message));
    }
  }
  useEffect(() => {
    const cached = loadCached(me?.credential);
    if (online && (!cached || cachedUntil(cached) - Date.now() / 1000 < REFRESH_BELOW_S)) {
      void refresh();
    }
    const timer = setInterval(() => setNow(Date.now() / 1000), 1000);
    return () => clearInterval(timer);
  }, [me?.credential, online]);
  const token = pass ? currentToken(pass, now) : null;
  return (
    <section class="pass-card" aria-labelledby="pass-title">
      <h1 id="pass-title">{t("pass.resident_title")}</h1>
      <p class="pass-name">{pass?.name ?? me?.name}</p>
      <p class="pass-building">{t("pass.building")}：{(pass?.buildings ?? me?.buildings ?? []).join("、")}</p>
      {token ? <Qr text={token.qr} label={t("pass.show_at_gate")} />
        : <p class="pass-note error">{t("pass.no_tokens")}</p>}
      <p class="pass-hint">{t("pass.show_at_gate")}</p>
      <p class="pass-small">{t("pass.changes_every_minute")}</p>
      {pass && <p class="pass-small">
        {online ? t("pass.offline_ready", { until: formatDateTime(cachedUntil(pass)) })
          : t("pass.offline_now")}
      </p>}
      {error && <p class="pass-note error" role="alert">{error}</p>}
      {online && <button type="button" class="pass-secondary" onClick={() => void refresh()}>
        {t("pass.refresh")}</button>}
    </section>
  );
}

export function Resident({ tab }: { tab: string }) {
  const [me, setMe] = useState<Me | null>(null);
  const [state, setState] = useState<"loading" | "in" | "out" | "offline">("loading");
  useEffect(() => {
    api<Me>("/api/v1/resident/me").then((found) => {
      setCsrfToken(found.csrf_token);
      setMe(found);
      setState("in");
    }).catch((err) => {
      // No signal but a pass on this phone: show it.
      setState(err instanceof ApiError && err.status === 0 && loadCached() ? "offline" : "out");
    });
  }, []);
  function signedIn(found: Me) {
    setCsrfToken(found.csrf_token);
    setMe(found);
    setState("in");
  }
  async function signOut() {
    try { await api("/api/v1/resident/sign-out", { method: "POST" }); } catch { /* ended anyway */ }
    clearCached();
    setCsrfToken(null);
    setMe(null);
    setState("out");
  }
  if (state === "loading") return <p class="pass-note">…</p>;
  if (state === "out") return <SignIn onDone={signedIn} />;
  const online = state === "in";
  return (
    <>
      {online && (
        <nav class="pass-tabs" aria-label={t("pass.title")}>
          <a href="#/r" aria-current={tab !== "invite" ? "page" : undefined}>{t("pass.tab_pass")}</a>
          <a href="#/r/invite" aria-current={tab === "invite" ? "page" : undefined}>
            {t("pass.tab_invite")}</a>
        </nav>
      )}
      {tab === "invite" && online && me ? <Invite me={me} /> : <PassView me={me} online={online} />}
      {online && <button type="button" class="pass-link" onClick={() => void signOut()}>
        {t("pass.sign_out")}</button>}
    </>
  );
}
