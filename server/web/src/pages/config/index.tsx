// The "config" page (#/config/<gateway>): a gateway's remote configuration — desired against
// running, raise or lower a rule's threshold (a new version, pushed at once), and the history
// of versions and of what the gateway reported (applied, rolled back and why).
import { useEffect, useState } from "preact/hooks";
import { api, ApiError } from "../../api";
import type { GatewayView } from "../../api";
import { Badge } from "../../components/Badge";
import type { Tone } from "../../components/Badge";
import { EmptyState } from "../../components/EmptyState";
import { t, typeName, useLanguage } from "../../i18n";
import { hrefOf, navigate } from "../../router";
import type { PageProps } from "../../routes";
import { formatDateTime } from "../../time";

interface ConfigStatus {
  gateway: string;
  desired_version: number | null;
  desired_hash: string | null;
  pushed_version: number | null;
  running_version: number | null;
  running_hash: string | null;
  in_sync: boolean;
  last_version: number | null;
  last_state: string | null;
  last_reason: string | null;
  last_result_at: string | null;
}
interface Rule { type: string; points?: string[]; threshold?: number; [key: string]: unknown }
interface ConfigDocument { rules?: Rule[]; [key: string]: unknown }
interface GatewayConfig {
  status: ConfigStatus;
  document: ConfigDocument | null;          // the desired version's
  running_document: ConfigDocument | null;  // what the gateway runs: the base to edit
}
interface VersionRow { version: number; hash: string; author: string; reason: string; created_at: string }
interface ApplyRow { version: number; hash: string; state: string; reason: string | null; reported_at: string }
interface History { versions: VersionRow[]; applies: ApplyRow[] }

const REFRESH_MS = 3000;
const short = (hash: string | null) => (hash ? hash.slice(0, 12) : "—");

function stateTone(state: string | null): Tone {
  if (state === "applied") return "ok";
  if (state === "rolled_back") return "critical";
  if (state === "refused") return "warn";
  return "muted";
}

/** The server's 422: one line per problem, naming the key. */
function problemsOf(error: unknown): string[] {
  if (!(error instanceof ApiError)) return [String(error)];
  try {
    const detail = JSON.parse(error.detail) as { code?: string; problems?: string[] };
    if (detail.code) {
      return [t(`errors.${detail.code}`), ...(detail.problems ?? [])];
    }
  } catch { /* a plain message */ }
  return [error.message];
}

export default function ConfigPage({ location }: PageProps) {
  useLanguage();
  const gateway = location.rest[0] ?? "";
  const [gateways, setGateways] = useState<GatewayView[]>([]);
  const [config, setConfig] = useState<GatewayConfig | null>(null);
  const [history, setHistory] = useState<History | null>(null);
  const [thresholds, setThresholds] = useState<Record<number, string>>({});
  const [reason, setReason] = useState("");
  const [problems, setProblems] = useState<string[]>([]);
  const [sent, setSent] = useState<number | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api<GatewayView[]>("/api/v1/gateways").then(setGateways).catch(() => setGateways([]));
  }, []);

  useEffect(() => {
    if (!gateway) return;
    let stopped = false;
    const base = `/api/v1/gateways/${encodeURIComponent(gateway)}/config`;
    const load = async (background: boolean) => {
      try {
        const [got, kept] = await Promise.all([api<GatewayConfig>(base, { background }),
                                               api<History>(`${base}/history`, { background })]);
        if (!stopped) { setConfig(got); setHistory(kept); }
      } catch { /* the next round tries again */ }
    };
    setConfig(null); setHistory(null); setThresholds({}); setProblems([]); setSent(null);
    void load(false);
    const timer = window.setInterval(() => void load(true), REFRESH_MS);
    return () => { stopped = true; window.clearInterval(timer); };
  }, [gateway]);

  // After a rollback the desired version is the one that failed: edit what runs instead.
  const document = config?.running_document ?? config?.document ?? null;
  const rules = (document?.rules ?? []).map((rule, index) => ({ rule, index }))
    .filter(({ rule }) => typeof rule.threshold === "number");

  const push = async (event: Event) => {
    event.preventDefault();
    if (!document) return;
    const changed: ConfigDocument = JSON.parse(JSON.stringify(document));
    for (const [index, text] of Object.entries(thresholds)) {
      const rule = changed.rules?.[Number(index)];
      if (rule && text.trim() !== "") rule.threshold = Number(text);
    }
    setBusy(true); setProblems([]); setSent(null);
    try {
      const answer = await api<{ version: number }>(
        `/api/v1/gateways/${encodeURIComponent(gateway)}/config`,
        { method: "POST", body: { document: changed, reason } });
      setSent(answer.version); setThresholds({}); setReason("");
    } catch (error) {
      setProblems(problemsOf(error));
    } finally {
      setBusy(false);
    }
  };

  const status = config?.status;
  return (
    <section class="page card config-page" aria-labelledby="page-title">
      <div class="config-head">
        <h1 id="page-title">{t("config.title")}</h1>
        <label>
          {t("config.gateway")}{" "}
          <select value={gateway} aria-label={t("config.gateway")}
                  onChange={(e) => navigate(hrefOf("config", [(e.target as HTMLSelectElement).value]))}>
            <option value="">{t("config.choose")}</option>
            {gateways.map((g) => <option key={g.id} value={g.id}>{g.id}</option>)}
          </select>
        </label>
      </div>
      {!gateway && <EmptyState text={t("config.choose_hint")} />}
      {gateway && status && (
        <dl class="fields config-status">
          <dt>{t("config.desired")}</dt>
          <dd>{status.desired_version === null ? t("config.none")
               : `v${status.desired_version} · ${short(status.desired_hash)}`}</dd>
          <dt>{t("config.running")}</dt>
          <dd>
            {status.running_version === null && !status.running_hash ? t("config.unknown")
              : `v${status.running_version ?? 0} · ${short(status.running_hash)}`}{" "}
            {status.desired_version !== null && (
              <Badge tone={status.in_sync ? "ok" : "warn"}>
                {t(status.in_sync ? "config_states.in_sync" : "config_states.out_of_sync")}
              </Badge>)}
          </dd>
          <dt>{t("config.last_result")}</dt>
          <dd>
            {status.last_state === null ? t("config.none") : (
              <>
                <Badge tone={stateTone(status.last_state)}>{t(`config_states.${status.last_state}`)}</Badge>
                {` v${status.last_version} · ${formatDateTime(status.last_result_at)}`}
                {status.last_reason && <span class="config-reason">{status.last_reason}</span>}
              </>)}
          </dd>
        </dl>
      )}
      {gateway && config && !document && <EmptyState text={t("config.no_document")} />}
      {gateway && document && (
        <form class="config-edit act" onSubmit={push}>
          <h2>{t("config.thresholds")}</h2>
          {rules.length === 0 && <p class="muted">{t("config.no_thresholds")}</p>}
          {rules.map(({ rule, index }) => (
            <label key={index} class="config-threshold">
              <span>{typeName(rule.type)} <small class="muted">{(rule.points ?? []).slice(0, 3).join(", ")}</small></span>
              <input type="number" step="0.1" inputMode="decimal" name={`threshold-${index}`}
                     value={thresholds[index] ?? String(rule.threshold)}
                     onInput={(e) => setThresholds({ ...thresholds,
                                                      [index]: (e.target as HTMLInputElement).value })} />
            </label>
          ))}
          <label class="config-threshold">
            <span>{t("config.reason")}</span>
            <input type="text" name="reason" required maxLength={500} value={reason}
                   placeholder={t("config.reason_hint")}
                   onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
          </label>
          <div class="actions">
            <button type="submit" class="primary" disabled={busy || rules.length === 0}>
              {t("config.push")}
            </button>
          </div>
          {sent !== null && status?.last_version !== sent && (  // until the gateway has answered
            <p class="config-sent" role="status">{t("config.sent", { version: sent })}</p>)}
          {problems.length > 0 && (
            <ul class="error config-problems" role="alert">
              {problems.map((p) => <li key={p}>{p}</li>)}
            </ul>)}
        </form>
      )}
      {gateway && history && (
        <div class="config-history">
          <h2>{t("config.versions")}</h2>
          <div class="table-wrap">
            <table class="config-table">
              <thead><tr><th>{t("config.version")}</th><th>{t("config.when")}</th>
                <th>{t("config.author")}</th><th>{t("config.reason")}</th><th>{t("config.hash")}</th></tr></thead>
              <tbody>
                {history.versions.map((v) => (
                  <tr key={v.version}><td>v{v.version}</td><td>{formatDateTime(v.created_at)}</td>
                    <td>{v.author}</td><td>{v.reason}</td><td class="id">{short(v.hash)}</td></tr>))}
              </tbody>
            </table>
          </div>
          <h2>{t("config.applies")}</h2>
          {history.applies.length === 0 ? <p class="muted">{t("config.none")}</p> : (
            <div class="table-wrap">
              <table class="config-table">
                <thead><tr><th>{t("config.version")}</th><th>{t("config.when")}</th>
                  <th>{t("config.result")}</th><th>{t("config.why")}</th></tr></thead>
                <tbody>
                  {history.applies.map((a, i) => (
                    <tr key={i}><td>v{a.version}</td><td>{formatDateTime(a.reported_at)}</td>
                      <td><Badge tone={stateTone(a.state)}>{t(`config_states.${a.state}`)}</Badge></td>
                      <td>{a.reason ?? ""}</td></tr>))}
                </tbody>
              </table>
            </div>)}
        </div>
      )}
    </section>
  );
}
