// The installer's page (#/install, #/install/<gateway>): pick the gateway, see its discovered
// devices (the draft saved for it, or `gridsense-edge discover --json` pasted), assign each to a
// point, save; then the commissioning check and its report. Built for a phone first.
import { useEffect, useMemo, useState } from "preact/hooks";
import { api, ApiError } from "../../api";
import type { RegistryTree, TreeNode } from "../../api";
import { EmptyState } from "../../components/EmptyState";
import { t, useLanguage } from "../../i18n";
import type { PageProps } from "../../routes";
import { hrefOf, navigate } from "../../router";
import { Devices } from "./Devices";
import type { GridOption, Row } from "./Devices";
import { configToSave, needsProfile, parseDiscovered, proposedPointId, proposedThreshold } from "./draft";
import { Commissioning } from "./Report";
import type {
  Assignment, DraftConfig, InstallableGateway, SavedInstallation, StoredInstallation,
} from "./types";

function gatewayLabel(g: InstallableGateway): string {
  const state = g.online === null ? t("install.never_seen")
    : g.online ? t("install.online") : t("install.offline");
  const enrollment = g.enrollment ? ` · ${t(`enrollment_states.${g.enrollment}`)}` : "";
  return `${g.id}${g.name ? `（${g.name}）` : ""} · ${state}${enrollment} · `
    + t("install.points_count", { n: g.points });
}

export default function Install({ location }: PageProps) {
  useLanguage();
  const gateway = location.rest[0] ?? "";
  const [gateways, setGateways] = useState<InstallableGateway[] | null>(null);
  const [error, setError] = useState("");

  const loadGateways = () => {
    api<InstallableGateway[]>("/api/v1/installation/gateways")
      .then(setGateways)
      .catch((e) => setError(e instanceof ApiError ? e.message : String(e)));
  };
  useEffect(loadGateways, []);

  return (
    <div class="page install" id="install">
      <section class="card" aria-labelledby="install-title">
        <h1 id="install-title">{t("install.title")}</h1>
        {error ? <p class="error" role="alert">{error}</p> : null}
        {gateways && gateways.length === 0 ? <EmptyState text={t("install.no_gateways")} /> : (
          <label class="install-pick">
            {t("install.pick_gateway")}
            <select id="install-gateway" value={gateway}
                    onChange={(e) => navigate(hrefOf("install", [(e.target as HTMLSelectElement).value]))}>
              <option value="">—</option>
              {(gateways ?? []).map((g) => <option key={g.id} value={g.id}>{gatewayLabel(g)}</option>)}
            </select>
          </label>
        )}
      </section>
      {gateway ? <GatewaySetup key={gateway} gateway={gateway} saved={loadGateways} /> : null}
    </div>
  );
}

/** Every grid and micro-grid the caller sees, micro-grids named under their grid. */
function gridOptions(tree: RegistryTree | null): GridOption[] {
  const options: GridOption[] = [];
  const walk = (nodes: TreeNode[], depth: number, parent: string) => {
    for (const node of nodes) {
      if (depth === 2) options.push({ id: node.id, label: node.name });
      if (depth === 3) options.push({ id: node.id, label: `${parent} / ${node.name}` });
      walk(node.children, depth + 1, node.name);
    }
  };
  walk(tree?.streets ?? [], 0, "");
  return options;
}

function rowsFor(gateway: string, config: DraftConfig | null,
                 stored: StoredInstallation | null): Row[] {
  const points = new Map((stored?.points ?? []).map((p) => [p.id, p]));
  const thresholds = new Map<string, number>();
  for (const rule of (config?.rules as Record<string, unknown>[] | undefined) ?? []) {
    const ids = rule.points as string[] | undefined;
    if (rule.type === "over_temperature" && ids?.length === 1 && typeof rule.threshold === "number") {
      thresholds.set(ids[0], rule.threshold);
    }
  }
  return (config?.devices ?? []).map((device, n) => {
    const id = proposedPointId(gateway, device, n);
    const known = points.get(id);
    // A sensor discovery could not identify: its best-fitting profile proposed, not assigned
    // until the installer confirms it.
    const pending = needsProfile(device);
    const fits = Array.isArray(device.candidates) ? device.candidates as string[] : [];
    const profile = pending ? fits[0] ?? "" : "";
    const proposed = proposedThreshold(device, profile || null);
    const threshold = thresholds.get(id) ?? proposed;
    return { assign: !pending, id, name: known?.name ?? "", grid: known?.grid ?? "",
             location: known?.location ?? "", proposed, profile,
             threshold: threshold === null ? "" : String(threshold) };
  });
}

function GatewaySetup({ gateway, saved }: { gateway: string; saved: () => void }) {
  const [stored, setStored] = useState<StoredInstallation | null>(null);
  const [config, setConfig] = useState<DraftConfig | null>(null);
  const [rows, setRows] = useState<Row[]>([]);
  const [tree, setTree] = useState<RegistryTree | null>(null);
  const [pasted, setPasted] = useState("");
  const [message, setMessage] = useState("");
  const [error, setError] = useState("");
  const [saving, setSaving] = useState(false);
  const grids = useMemo(() => gridOptions(tree), [tree]);

  useEffect(() => {
    api<RegistryTree>("/api/v1/registry/tree").then(setTree).catch(() => setTree(null));
    api<StoredInstallation>(`/api/v1/gateways/${gateway}/installation`)
      .then((found) => {
        setStored(found);
        setConfig(found.config);
        setRows(rowsFor(gateway, found.config, found));
      })
      .catch((e) => setError(e instanceof ApiError ? e.message : String(e)));
  }, [gateway]);

  const load = () => {
    const found = parseDiscovered(pasted);
    if ("error" in found) {
      setError(found.error === "devices" ? t("install.paste_no_devices")
        : t("install.paste_error", { detail: found.error }));
      return;
    }
    setError("");
    setConfig(found.config);
    setRows(rowsFor(gateway, found.config, stored));
  };

  const save = async (event: Event) => {
    event.preventDefault();
    const assignments: Assignment[] = [];
    const draft = config ?? {};
    const sent = configToSave(draft, rows.map((r) => r.profile || null), rows.map((r) => r.assign));
    for (const [n, row] of rows.entries()) {
      if (!row.assign) continue;
      if (!row.name.trim() || !row.grid || !row.id) {
        setError(t("install.name_required", { n: n + 1 }));
        return;
      }
      if (sent.index[n] < 0) {
        setError(t("install.profile_required", { n: n + 1 }));
        return;
      }
      const threshold = Number.parseFloat(row.threshold);
      assignments.push({ device: sent.index[n], id: row.id, name: row.name.trim(), grid: row.grid,
                         location: row.location.trim() || null,
                         thresholds: Number.isFinite(threshold) ? { temperature: threshold } : {} });
    }
    if (!assignments.length) {
      setError(t("install.nothing_assigned"));
      return;
    }
    setSaving(true);
    setError("");
    setMessage("");
    try {
      const answer = await api<SavedInstallation>(`/api/v1/gateways/${gateway}/installation`, {
        method: "PUT", body: { config: sent.config, points: assignments } });
      setConfig(answer.config);
      setRows(rowsFor(gateway, answer.config, stored));
      const pushed = answer.pushed.version !== null
        ? t("install.pushed", { version: answer.pushed.version })
        : t("install.not_pushed", { reason: answer.pushed.reason ?? "" });
      setMessage(`${t("install.saved", { n: assignments.length })} · ${pushed}`);
      saved();  // the picker's point counts
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    } finally {
      setSaving(false);
    }
  };

  const devices = config?.devices ?? [];
  return (
    <>
      <section class="card" aria-labelledby="devices-title">
        <h2 id="devices-title">{t("install.devices")}</h2>
        {devices.length === 0 ? <p class="muted" id="no-devices">{t("install.no_devices")}</p> : null}
        <details open={devices.length === 0} class="install-paste">
          <summary>{t("install.paste_label")}</summary>
          <label for="discover-json" class="sr-only">{t("install.paste_label")}</label>
          <textarea id="discover-json" rows={6} value={pasted} spellcheck={false}
                    onInput={(e) => setPasted((e.target as HTMLTextAreaElement).value)} />
          <button type="button" id="discover-load" onClick={load}>{t("install.paste_load")}</button>
        </details>
        <form onSubmit={save}>
          <Devices devices={devices} rows={rows} grids={grids}
                   change={(n, row) => setRows(rows.map((r, i) => (i === n ? row : r)))} />
          {error ? <p class="error" role="alert" id="install-error">{error}</p> : null}
          {message ? <p class="install-saved" role="status" id="install-saved">{message}</p> : null}
          {devices.length ? (
            <button type="submit" class="primary" id="install-save" disabled={saving}>
              {saving ? t("install.saving") : t("install.save")}
            </button>
          ) : null}
        </form>
      </section>
      <Commissioning gateway={gateway} />
    </>
  );
}
