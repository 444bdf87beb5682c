// Visitor passes of a community the caller manages: make one on a resident's behalf (the link
// to send), and revoke one (the gateways refuse it from their next sync, online or offline).
import { useEffect, useState } from "preact/hooks";
import { api, ApiError } from "../../api";
import { t } from "../../i18n";
import { formatDateTime } from "../../time";

interface Community { id: string; name: string; compact: boolean }
interface VisitorPass {
  pass_id: string; visitor_name: string | null; visitor_phone: string | null; inviter: string;
  not_before: string; not_after: string; uses: number; used: number; buildings: string[];
  revoked: boolean; link: string | null;
}

export function VisitorPasses() {
  const [communities, setCommunities] = useState<Community[]>([]);
  const [community, setCommunity] = useState("");
  const [rows, setRows] = useState<VisitorPass[]>([]);
  const [inviter, setInviter] = useState("");
  const [name, setName] = useState("");
  const [phone, setPhone] = useState("");
  const [hours, setHours] = useState(4);
  const [uses, setUses] = useState(1);
  const [link, setLink] = useState("");
  const [error, setError] = useState("");
  useEffect(() => {
    api<Community[]>("/api/v1/pass-communities").then((found) => {
      setCommunities(found);
      if (found.length) setCommunity(found[0].id);
    }).catch(() => {});
  }, []);
  const load = () => community && api<VisitorPass[]>(
    `/api/v1/communities/${encodeURIComponent(community)}/passes`, { query: { kind: "visitor" } })
    .then(setRows).catch(() => {});
  useEffect(() => { void load(); }, [community]);
  const fail = (err: unknown) =>
    setError(err instanceof ApiError ? (err.detail || err.message) : String(err));
  async function submit(e: Event) {
    e.preventDefault();
    setError("");
    const start = new Date();
    try {
      const made = await api<VisitorPass>(
        `/api/v1/communities/${encodeURIComponent(community)}/visitor-passes`,
        { method: "POST", body: { inviter: inviter.trim(), name, phone, uses,
          not_before: start.toISOString(),
          not_after: new Date(start.getTime() + hours * 3600_000).toISOString() } });
      setLink(made.link ?? "");
      void load();
    } catch (err) { fail(err); }
  }
  async function revoke(passId: string) {
    try {
      await api(`/api/v1/passes/${passId}/revoke`, { method: "POST" });
      void load();
    } catch (err) { fail(err); }
  }
  return (
    <section class="card pass-admin-form">
      <h2>{t("pass.admin_visitors_title")}</h2>
      {communities.length > 1 && (
        <select aria-label={t("pass.admin_community")} value={community}
                onChange={(e) => setCommunity(e.currentTarget.value)}>
          {communities.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
        </select>
      )}
      <form class="pass-admin-inline" onSubmit={submit}>
        <input aria-label={t("pass.admin_credential")} placeholder={t("pass.admin_credential")}
               value={inviter} required onInput={(e) => setInviter(e.currentTarget.value)} />
        <input aria-label={t("pass.visitor_name")} placeholder={t("pass.visitor_name")}
               value={name} required onInput={(e) => setName(e.currentTarget.value)} />
        <input aria-label={t("pass.visitor_phone")} placeholder={t("pass.visitor_phone")}
               value={phone} required type="tel" onInput={(e) => setPhone(e.currentTarget.value)} />
        <label>{t("pass.admin_hours")}
          <input type="number" min={1} max={744} value={hours}
                 onInput={(e) => setHours(Number(e.currentTarget.value))} /></label>
        <label>{t("pass.uses")}
          <input type="number" min={1} max={100} value={uses}
                 onInput={(e) => setUses(Number(e.currentTarget.value))} /></label>
        <button type="submit" class="primary">{t("pass.invite")}</button>
      </form>
      {error && <p class="notice error" role="alert">{error}</p>}
      {link && <p class="notice">{t("pass.link_ready")} <code>{link}</code></p>}
      <ul class="pass-admin-list">
        {rows.map((v) => (
          <li key={v.pass_id} class={v.revoked ? "revoked" : ""}>
            <strong>{v.visitor_name}</strong> {v.visitor_phone} · {t("pass.admin_inviter")} {v.inviter}
            <br /><small class="muted">{t("pass.window", { from: formatDateTime(v.not_before),
              to: formatDateTime(v.not_after) })} · {t("pass.used_of", { used: v.used, uses: v.uses })}
              {" · "}{v.buildings.join("、")}</small>
            {v.revoked ? <span class="muted"> {t("pass.revoked")}</span>
              : <button type="button" onClick={() => void revoke(v.pass_id)}>{t("pass.revoke")}</button>}
          </li>
        ))}
      </ul>
      <p class="muted">{t("pass.admin_revoke_hint")}</p>
    </section>
  );
}
