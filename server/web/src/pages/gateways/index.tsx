// The gateways page (#/gateways, #/gateways/<gateway id>): every gateway the caller sees with its
// state and health, kept current by the stream's gateway events; the selected gateway's points
// with their latest values and sparklines below.
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api } from "../../api";
import { EmptyState } from "../../components/EmptyState";
import { t, useLanguage } from "../../i18n";
import * as live from "../../live";
import type { PageProps } from "../../routes";
import { hrefOf, navigate } from "../../router";
import { useNow } from "../../time";
import { GatewayTable } from "./GatewayTable";
import { PointList } from "./PointList";
import type { GatewayMessage, GatewayRow } from "./types";
import "./gateways.css";

const FRESH_MS = 2000;  // how long a row changed by the stream stays highlighted

export default function Gateways({ location }: PageProps) {
  useLanguage();
  const now = useNow(10_000);
  const [gateways, setGateways] = useState<GatewayRow[] | null>(null);
  const [error, setError] = useState("");
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const timers = useRef(new Map<string, number>());

  const load = (background: boolean) =>
    api<GatewayRow[]>("/api/v1/gateways", { background })
      .then((rows) => { setGateways(rows); setError(""); })
      .catch((e: unknown) => setError(e instanceof ApiError || e instanceof Error ? e.message : String(e)));

  useEffect(() => { void load(false); }, []);
  useEffect(() => live.subscribe((msg) => {
    if (msg.type === "connected") { void load(true); return; }
    if (msg.type !== "gateway") return;
    const change = (msg as unknown as GatewayMessage).gateway;
    setGateways((rows) => {
      if (!rows) return rows;
      if (!rows.some((g) => g.id === change.id)) { void load(true); return rows; }  // a new one
      return rows.map((g) => (g.id === change.id ? { ...g, ...change } : g));
    });
    setFresh((ids) => new Set(ids).add(change.id));
    clearTimeout(timers.current.get(change.id));
    timers.current.set(change.id, window.setTimeout(() => setFresh((ids) => {
      const next = new Set(ids);
      next.delete(change.id);
      return next;
    }), FRESH_MS));
  }), []);
  useEffect(() => () => timers.current.forEach((id) => clearTimeout(id)), []);

  const selectedId = location.rest[0] ?? gateways?.[0]?.id ?? null;
  const selected = gateways?.find((g) => g.id === selectedId) ?? null;
  const online = gateways?.filter((g) => g.state === "online").length ?? 0;
  return (
    <div class="gateways-page" id="gateways">
      <section class="card" aria-labelledby="gateways-title">
        <div class="gateways-head">
          <h1 id="gateways-title">{t("gateways.title")}</h1>
          {gateways ? <span class="muted" id="gateways-summary">
            {t("gateways.summary", { online, total: gateways.length })}</span> : null}
        </div>
        {error ? <p class="error" role="alert">{error}</p> : null}
        {gateways === null ? <p class="muted">{t("app.loading")}</p>
          : gateways.length === 0 ? <EmptyState id="no-gateways" text={t("gateways.none")} />
          : <GatewayTable gateways={gateways} selected={selectedId} now={now} fresh={fresh}
                          select={(id) => navigate(hrefOf("gateways", [id]), true)} />}
      </section>
      {selected ? <PointList gateway={selected} now={now} /> : null}
    </div>
  );
}
