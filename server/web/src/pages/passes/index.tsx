// The "passes" page (#/passes): the access log with each pass use's visitor and inviter; for
// the control room (and leaders, for their communities) a resident's one-time sign-in code to
// print, visitor passes made on a resident's behalf, and revocation.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError } from "../../api";
import { EmptyState } from "../../components/EmptyState";
import { t, useLanguage } from "../../i18n";
import type { PageProps } from "../../routes";
import { session } from "../../session";
import { useStore } from "../../store";
import { formatDateTime } from "../../time";
import { VisitorPasses } from "./VisitorPasses";
import "./passes.css";

interface AccessEvent {
  event_id: string; ts: string; door: string; result: string; method: string;
  credential: string | null; reason: string | null; offline: boolean; gateway: string;
  pass_id: string | null; pass_kind: string | null; visitor: string | null;
  inviter: string | null; inviter_name: string | null;
}
interface Code { credential: string; holder: string; code: string; expires_at: string;
                 sign_in_url: string; sent: string | null }

const MANAGERS = ["control", "leader"];
const REFRESH_MS = 5000;

function who(e: AccessEvent): string {
  if (e.pass_kind === "visitor") return `${t("pass.admin_visitor")} ${e.visitor ?? ""}`;
  if (e.pass_kind === "resident") return `${t("pass.admin_resident")} ${e.inviter_name ?? ""}`;
  return e.credential ?? "—";
}

function AccessLog() {
  const [events, setEvents] = useState<AccessEvent[] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    const load = () => api<AccessEvent[]>("/api/v1/access-events", { query: { limit: 100 },
                                                                      background: true })
      .then((found) => { setEvents(found); setError(""); })
      .catch((e) => setError(e instanceof ApiError ? e.message : String(e)));
    void load();
    const timer = setInterval(load, REFRESH_MS);
    return () => clearInterval(timer);
  }, []);
  if (error) return <p class="notice error">{error}</p>;
  if (!events) return <p class="muted">…</p>;
  if (!events.length) return <EmptyState text={t("pass.admin_no_events")} />;
  return (
    <div class="table-wrap">
      <table class="access-table">
        <thead><tr>
          <th>{t("pass.admin_time")}</th><th>{t("pass.admin_door")}</th>
          <th>{t("pass.admin_result")}</th><th>{t("pass.admin_method")}</th>
          <th>{t("pass.admin_who")}</th><th>{t("pass.admin_inviter")}</th>
          <th>{t("pass.admin_reason")}</th>
        </tr></thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.event_id} class={`result-${e.result}`}>
              <td data-label={t("pass.admin_time")}>{formatDateTime(e.ts)}</td>
              <td data-label={t("pass.admin_door")}>{e.door}</td>
              <td data-label={t("pass.admin_result")}>{t(`pass.admin_result_${e.result}`)}</td>
              <td data-label={t("pass.admin_method")}>{t(`pass.admin_method_${e.method}`)}
                {e.offline ? <small class="muted"> {t("pass.admin_offline")}</small> : null}</td>
              <td data-label={t("pass.admin_who")} class="access-who">{who(e)}</td>
              <td data-label={t("pass.admin_inviter")}>{e.pass_kind === "visitor"
                ? `${e.inviter_name ?? ""}（${e.inviter}）` : "—"}</td>
              <td data-label={t("pass.admin_reason")}>{e.reason ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function ResidentCode({ canSend }: { canSend: boolean }) {
  const [credential, setCredential] = useState("");
  const [sendTo, setSendTo] = useState("");
  const [code, setCode] = useState<Code | null>(null);
  const [error, setError] = useState("");
  async function submit(e: Event) {
    e.preventDefault();
    setError("");
    try {
      setCode(await api<Code>(`/api/v1/credentials/${encodeURIComponent(credential.trim())}/resident-code`,
                              { method: "POST", body: sendTo.trim() ? { send_to: sendTo.trim() } : {} }));
    } catch (err) {
      setCode(null);
      setError(err instanceof ApiError ? (err.detail || err.message) : String(err));
    }
  }
  return (
    <form class="card pass-admin-form" onSubmit={submit}>
      <h2>{t("pass.admin_code_title")}</h2>
      <p class="muted">{t("pass.admin_code_hint")}</p>
      <label for="code-credential">{t("pass.admin_credential")}</label>
      <input id="code-credential" value={credential} required maxLength={64}
             onInput={(e) => setCredential(e.currentTarget.value)} />
      {canSend && (<>
        <label for="code-send">{t("pass.admin_send_to")}</label>
        <input id="code-send" value={sendTo} maxLength={500} placeholder="mailto://…"
               onInput={(e) => setSendTo(e.currentTarget.value)} />
      </>)}
      <button type="submit" class="primary">{t("pass.admin_code_issue")}</button>
      {error && <p class="notice error" role="alert">{error}</p>}
      {code && (
        <div class="code-slip" role="status">
          <p>{code.holder}（{code.credential}）</p>
          <p class="code-big" id="issued-code">{code.code}</p>
          <p>{t("pass.admin_code_open", { url: code.sign_in_url })}</p>
          <p class="muted">{t("pass.admin_code_expires", { at: formatDateTime(code.expires_at) })}</p>
          {code.sent && <p>{code.sent === "sent" ? t("pass.admin_sent") : code.sent}</p>}
        </div>
      )}
    </form>
  );
}

export default function Passes(_props: PageProps) {
  useLanguage();
  const who = useStore(session);
  const manages = !!who && MANAGERS.includes(who.role);
  return (
    <div class="passes-page">
      <h1>{t("pass.admin_title")}</h1>
      {manages && (
        <div class="pass-admin-grid">
          <ResidentCode canSend={who?.role === "control"} />
          <VisitorPasses />
        </div>
      )}
      <section class="card">
        <h2>{t("pass.admin_log_title")}</h2>
        <AccessLog />
      </section>
    </div>
  );
}
