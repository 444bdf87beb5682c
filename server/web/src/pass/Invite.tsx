// Inviting a visitor to the resident's own building: name, phone, window, uses; the answer is
// the link to send. The resident's visitors below, each revocable.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError } from "../api";
import { t } from "../i18n";
import { formatDateTime, localInput, withZone } from "./when";

interface VisitorPass {
  pass_id: string; visitor_name: string | null; visitor_phone: string | null;
  not_before: string; not_after: string; uses: number; used: number; buildings: string[];
  revoked: boolean; link: string | null;
}

export function Invite({ me }: { me: { buildings: string[] } }) {
  const start = new Date();
  const [name, setName] = useState("");
  const [phone, setPhone] = useState("");
  const [from, setFrom] = useState(localInput(start));
  const [until, setUntil] = useState(localInput(new Date(start.getTime() + 4 * 3600_000)));
  const [uses, setUses] = useState(1);
  const [building, setBuilding] = useState(me.buildings[0] ?? "");
  const [made, setMade] = useState<VisitorPass | null>(null);
  const [error, setError] = useState("");
  const [mine, setMine] = useState<VisitorPass[]>([]);
  const [copied, setCopied] = useState(false);
  const load = () => api<VisitorPass[]>("/api/v1/resident/visitors").then(setMine).catch(() => {});
  useEffect(() => { void load(); }, []);
  async function submit(e: Event) {
    e.preventDefault();
    setError("");
    setCopied(false);
    try {
      setMade(await api<VisitorPass>("/api/v1/resident/visitors", { method: "POST", body: {
        name, phone, not_before: withZone(from), not_after: withZone(until), uses,
        buildings: building ? [building] : [] } }));
      void load();
    } catch (err) {
      setError(err instanceof ApiError ? (err.detail || err.message) : String(err));
    }
  }
  async function revoke(passId: string) {
    try {
      await api(`/api/v1/resident/visitors/${passId}/revoke`, { method: "POST" });
      void load();
    } catch (err) {
      setError(err instanceof ApiError ? (err.detail || err.message) : String(err));
    }
  }
  async function copy(link: string) {
    try { await navigator.clipboard.writeText(link); setCopied(true); } catch { /* select it */ }
  }
  return (
    <>
      <form class="pass-card pass-form" onSubmit={submit}>
        <h1>{t("pass.tab_invite")}</h1>
        <label for="v-name">{t("pass.visitor_name")}</label>
        <input id="v-name" value={name} maxLength={100} required
               onInput={(e) => setName(e.currentTarget.value)} />
        <label for="v-phone">{t("pass.visitor_phone")}</label>
        <input id="v-phone" type="tel" inputMode="tel" value={phone} required pattern="\+?[0-9 \-]{5,20}"
               onInput={(e) => setPhone(e.currentTarget.value)} />
        {me.buildings.length > 1 && (<>
          <label for="v-building">{t("pass.building")}</label>
          <select id="v-building" value={building}
                  onChange={(e) => setBuilding(e.currentTarget.value)}>
            {me.buildings.map((b) => <option value={b} key={b}>{b}</option>)}
          </select>
        </>)}
        <label for="v-from">{t("pass.starts")}</label>
        <input id="v-from" type="datetime-local" value={from} required
               onInput={(e) => setFrom(e.currentTarget.value)} />
        <label for="v-until">{t("pass.ends")}</label>
        <input id="v-until" type="datetime-local" value={until} required
               onInput={(e) => setUntil(e.currentTarget.value)} />
        <label for="v-uses">{t("pass.uses")}</label>
        <input id="v-uses" type="number" min={1} max={100} value={uses} required
               onInput={(e) => setUses(Number(e.currentTarget.value))} />
        <button type="submit" class="primary pass-big">{t("pass.invite")}</button>
        {error && <p class="pass-note error" role="alert">{error}</p>}
        {made?.link && (
          <div class="pass-note" role="status">
            <p>{t("pass.link_ready")}</p>
            <p class="pass-linktext" id="visitor-link">{made.link}</p>
            <button type="button" class="pass-secondary" onClick={() => void copy(made.link!)}>
              {copied ? t("pass.copied") : t("pass.copy")}</button>
          </div>
        )}
      </form>
      <section class="pass-card" aria-labelledby="my-visitors">
        <h2 id="my-visitors">{t("pass.my_visitors")}</h2>
        {mine.length === 0 ? <p class="pass-small">{t("pass.none_yet")}</p> : (
          <ul class="pass-list">
            {mine.map((v) => (
              <li key={v.pass_id} class={v.revoked ? "revoked" : ""}>
                <strong>{v.visitor_name}</strong> {v.visitor_phone}
                <br /><span class="pass-small">{t("pass.window", {
                  from: formatDateTime(v.not_before), to: formatDateTime(v.not_after) })}
                  {" · "}{t("pass.used_of", { used: v.used, uses: v.uses })}</span>
                {v.revoked ? <span class="pass-state state-revoked">{t("pass.revoked")}</span>
                  : <button type="button" class="pass-secondary"
                            onClick={() => void revoke(v.pass_id)}>{t("pass.revoke")}</button>}
              </li>
            ))}
          </ul>
        )}
      </section>
    </>
  );
}
