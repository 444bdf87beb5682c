// The visitor's page behind the link (#/v/<token>): no sign-in. The QR, the window and the
// uses, Chinese first. The token stays in the URL's fragment: no server or proxy logs it.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError } from "../api";
import { t } from "../i18n";
import { formatDateTime } from "./when";
import { Qr } from "./Qr";

interface VisitorView {
  visitor_name: string | null; buildings: string[]; doors: string[];
  not_before: string; not_after: string; uses: number; used: number;
  state: string; form: string | null; qr: string | null;
}

export function Visitor({ token }: { token: string }) {
  const [view, setView] = useState<VisitorView | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    api<VisitorView>(`/api/v1/visitor/${encodeURIComponent(token)}`)
      .then(setView)
      .catch((e) => setError(e instanceof ApiError && e.status === 404 ? t("pass.link_invalid")
                             : e instanceof Error ? e.message : String(e)));
  }, [token]);
  if (error) return <p class="pass-note error" role="alert">{error}</p>;
  if (!view) return <p class="pass-note">…</p>;
  const place = [...view.buildings, ...view.doors].join("、");
  return (
    <section class="pass-card" aria-labelledby="visitor-title">
      <h1 id="visitor-title">{t("pass.visitor_title")}</h1>
      <p class="pass-name">{view.visitor_name}</p>
      <p class={`pass-state state-${view.state}`}>{t(`pass.state_${view.state}`)}</p>
      {view.qr && <Qr text={view.qr} label={t("pass.show_at_gate")} />}
      {view.qr && <p class="pass-hint">{t("pass.show_at_gate")}</p>}
      <dl class="pass-facts">
        <dt>{t("pass.invited_by")}</dt><dd>{place}</dd>
        <dt>{t("pass.starts")}</dt><dd>{formatDateTime(view.not_before)}</dd>
        <dt>{t("pass.ends")}</dt><dd>{formatDateTime(view.not_after)}</dd>
        <dt>{t("pass.uses")}</dt><dd>{t("pass.used_of", { used: view.used, uses: view.uses })}</dd>
      </dl>
    </section>
  );
}
