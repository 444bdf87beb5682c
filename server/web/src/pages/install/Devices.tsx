// The discovered devices, each assignable to a point: id, name, grid, place and (for sensors
// that measure temperature) the alarm threshold the device's model suggests.
import { t } from "../../i18n";
import { KNOWN_PROFILES, needsProfile, profileOf, proposedThreshold, whereOf } from "./draft";
import type { DraftDevice } from "./types";

export interface Row {
  assign: boolean;
  id: string;
  name: string;
  grid: string;
  location: string;
  threshold: string;   // as typed; "" for none
  proposed: number | null;
  profile: string;     // chosen for a sensor discovery could not identify; "" otherwise
}

export interface GridOption { id: string; label: string }

interface Props {
  devices: DraftDevice[];
  rows: Row[];
  grids: GridOption[];
  change: (index: number, row: Row) => void;
}

/** The profiles its answers fit first, then every other one the page knows. */
function profileChoices(device: DraftDevice): string[] {
  const fit = Array.isArray(device.candidates) ? device.candidates as string[] : [];
  return [...fit, ...KNOWN_PROFILES.filter((p) => !fit.includes(p))];
}

export function Devices({ devices, rows, grids, change }: Props) {
  return (
    <ol class="install-devices" id="install-devices">
      {devices.map((device, n) => {
        const row = rows[n];
        const set = (patch: Partial<Row>) => change(n, { ...row, ...patch });
        const field = (key: string) => `device-${n}-${key}`;
        return (
          <li class="card install-device" key={n}>
            <div class="install-device-head">
              <strong>{t("install.device", { n: n + 1 })}</strong>
              <span class="id">{device.type}</span>
              <span class="muted">{profileOf(device) ?? t("install.profile_unknown")}</span>
              <span class="muted">{whereOf(device)}</span>
            </div>
            <label class="check install-assign">
              <input type="checkbox" checked={row.assign} id={field("assign")}
                     onChange={(e) => set({ assign: (e.target as HTMLInputElement).checked })} />
              {t("install.assign")}
            </label>
            {row.assign ? (
              <div class="install-fields">
                {needsProfile(device) ? (
                  <>
                    <label for={field("profile")}>{t("install.profile")}</label>
                    <select id={field("profile")} value={row.profile} required
                            onChange={(e) => {
                              const profile = (e.target as HTMLSelectElement).value;
                              const proposed = proposedThreshold(device, profile || null);
                              set({ profile, proposed,
                                    threshold: proposed === null ? "" : String(proposed) });
                            }}>
                      <option value="">{t("install.choose_profile")}</option>
                      {profileChoices(device).map((p) => <option key={p} value={p}>{p}</option>)}
                    </select>
                  </>
                ) : null}
                <label for={field("name")}>{t("install.point_name")}</label>
                <input id={field("name")} value={row.name} maxLength={200} required
                       onInput={(e) => set({ name: (e.target as HTMLInputElement).value })} />
                <label for={field("id")}>{t("install.point_id")}</label>
                <input id={field("id")} value={row.id} maxLength={64} required
                       onInput={(e) => set({ id: (e.target as HTMLInputElement).value.trim() })} />
                <label for={field("grid")}>{t("install.grid")}</label>
                <select id={field("grid")} value={row.grid} required
                        onChange={(e) => set({ grid: (e.target as HTMLSelectElement).value })}>
                  <option value="">{t("install.choose_grid")}</option>
                  {grids.map((g) => <option key={g.id} value={g.id}>{g.label}</option>)}
                </select>
                <label for={field("location")}>{t("install.location")}</label>
                <input id={field("location")} value={row.location} maxLength={200}
                       onInput={(e) => set({ location: (e.target as HTMLInputElement).value })} />
                {row.proposed !== null ? (
                  <>
                    <label for={field("threshold")}>{t("install.threshold")}</label>
                    <span class="install-threshold">
                      <input id={field("threshold")} type="number" step="0.5" value={row.threshold}
                             inputMode="decimal" aria-describedby={field("threshold-hint")}
                             onInput={(e) => set({ threshold: (e.target as HTMLInputElement).value })} />
                      <small class="muted" id={field("threshold-hint")}>
                        {t("install.threshold_hint")}（{row.proposed}）
                      </small>
                    </span>
                  </>
                ) : null}
              </div>
            ) : null}
          </li>
        );
      })}
    </ol>
  );
}
