// The commissioning check: start it, follow its report until the drill is delivered (or not),
// acknowledge the drill, open the printable page.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError } from "../../api";
import { Badge } from "../../components/Badge";
import type { Tone } from "../../components/Badge";
import { t } from "../../i18n";
import { session } from "../../session";
import { useStore } from "../../store";
import { formatDateTime } from "../../time";
import type { CommissioningReport } from "./types";

const POLL_MS = 2000;
const VERDICT_TONE: Record<string, Tone> = { green: "ok", red: "critical", pending: "warn" };

/** A code in the words of a catalogue section (verdicts, drill_outcomes, channels…). */
function words(section: string, code: string | null): string {
  if (!code) return "—";
  const found = t(`${section}.${code}`);
  return found === `${section}.${code}` ? code : found;
}

function seconds(value: number | null): string {
  return value === null ? "—" : t("install.seconds", { n: value.toFixed(1) });
}

export function Commissioning({ gateway }: { gateway: string }) {
  const me = useStore(session);
  const [report, setReport] = useState<CommissioningReport | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");

  // The latest run of this gateway, if any, is shown on arrival.
  useEffect(() => {
    let live = true;
    api<{ id: string }[]>(`/api/v1/gateways/${gateway}/commissioning`)
      .then((runs) => runs.length && live
        ? api<CommissioningReport>(`/api/v1/commissioning/${runs[0].id}`) : null)
      .then((found) => { if (live && found) setReport(found); })
      .catch(() => { /* no run yet, or not allowed: the start button says more */ });
    return () => { live = false; };
  }, [gateway]);

  // While the drill is on its way the report is read again (readings and delivery come in).
  useEffect(() => {
    if (!report || report.verdict !== "pending") return;
    const timer = window.setTimeout(() => {
      api<CommissioningReport>(`/api/v1/commissioning/${report.id}`, { background: true })
        .then(setReport).catch((e) => setError(e instanceof ApiError ? e.message : String(e)));
    }, POLL_MS);
    return () => window.clearTimeout(timer);
  }, [report]);

  const call = async (path: string, method: "GET" | "POST") => {
    setBusy(true);
    setError("");
    try {
      setReport(await api<CommissioningReport>(path, { method, body: method === "POST" ? {} : undefined }));
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };

  const canAck = report && me && report.installer === me.username && report.drill.incident
    && report.drill.outcome !== "acknowledged";
  return (
    <section class="card install-commission" aria-labelledby="commission-title">
      <h2 id="commission-title">{t("install.commission")}</h2>
      <p class="muted">{t("install.commission_hint")}</p>
      <div class="actions">
        <button type="button" class="primary" id="commission-start" disabled={busy}
                onClick={() => call(`/api/v1/gateways/${gateway}/commissioning`, "POST")}>
          {busy ? t("install.starting") : t("install.start")}
        </button>
        {report ? (
          <>
            <button type="button" disabled={busy}
                    onClick={() => call(`/api/v1/commissioning/${report.id}`, "GET")}>
              {t("install.recheck")}
            </button>
            {canAck ? (
              <button type="button" id="commission-ack" disabled={busy}
                      onClick={() => call(`/api/v1/commissioning/${report.id}/ack`, "POST")}>
                {t("install.ack")}
              </button>
            ) : null}
            <a class="button" href={`/api/v1/commissioning/${report.id}/report.html`}
               target="_blank" rel="noopener">{t("install.print")}</a>
          </>
        ) : null}
      </div>
      {error ? <p class="error" role="alert">{error}</p> : null}
      {report ? <ReportView report={report} /> : null}
    </section>
  );
}

function ReportView({ report }: { report: CommissioningReport }) {
  const drill = report.drill;
  return (
    <div id="commission-report" aria-live="polite">
      <p class="install-verdict">
        {t("install.verdict")}：
        <Badge tone={VERDICT_TONE[report.verdict] ?? "muted"}>
          <span id="commission-verdict">{words("commissioning_verdicts", report.verdict)}</span>
        </Badge>
      </p>
      {report.reasons.length ? (
        <ul class="install-reasons">
          {report.reasons.map((r) => (
            <li key={r.code + JSON.stringify(r.params)}>
              {t(`commissioning_reasons.${r.code}`, r.params)}
            </li>
          ))}
        </ul>
      ) : null}
      <ul class="install-points" id="commission-points">
        {report.points.map((p) => (
          <li key={p.point} class={p.ok ? "ok" : "missing"} data-point={p.point}>
            <span class="name">{p.name}</span>
            <span class="id">{p.point} · {p.grid_name ?? p.grid}</span>
            {p.first.length ? p.first.map((r) => (
              <span key={r.metric} class="install-reading">
                {t("install.first_reading")}：{words("metric_names", r.metric)} {r.value}
                {" · "}{t("install.first_time")} {formatDateTime(r.t)}
              </span>
            )) : <Badge tone="critical">{t("install.no_reading")}</Badge>}
          </li>
        ))}
      </ul>
      <dl class="fields">
        <dt>{t("install.drill")}</dt>
        <dd id="commission-drill">{words("drill_outcomes", drill.outcome)}</dd>
        <dt>{t("install.via")}</dt>
        <dd>{words("channel_names", drill.reached_via)}</dd>
        <dt>{t("install.delivery")}</dt>
        <dd>{seconds(drill.delivery_s)}</dd>
        <dt>{t("install.round_trip")}</dt>
        <dd>{seconds(drill.round_trip_s)}</dd>
      </dl>
    </div>
  );
}
