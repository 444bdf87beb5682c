// Reading a gateway's discovered devices: the draft configuration `gridsense-edge discover
// --json` prints (the config itself, or under "draft" / "config"), and what the page proposes
// for each device before the installer changes it.
import type { DraftConfig, DraftDevice } from "./types";

/** Temperature alarm threshold proposed per device profile (°C); others get the default. */
const PROFILE_THRESHOLDS: Record<string, number> = {
  "xy-md02": 60,             // indoor temperature/humidity transmitter
  "pt100-transmitter": 90,   // pipe and boiler temperatures run hotter
  "ds18b20": 60,
};
const DEFAULT_THRESHOLD = 60;  // the example gateway's over_temperature threshold

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The profiles the page offers for a sensor discovery could not identify. */
export const KNOWN_PROFILES = Object.keys(PROFILE_THRESHOLDS).filter((p) => p !== "ds18b20");

/** A Modbus sensor that answered but did not say what it is: its profile is the installer's
 * choice (`candidates`: the profiles its answers fit, best first). It joins the configuration
 * only once assigned with a profile. */
function pendingSensors(parsed: Record<string, unknown>): DraftDevice[] {
  const draft = parsed.draft;
  if (!isObject(draft) || !Array.isArray(draft.pending)) return [];
  const out: DraftDevice[] = [];
  for (const item of draft.pending) {
    if (!isObject(item) || !isObject(item.entry) || item.entry.type !== "modbus_temperature") continue;
    const candidates = Array.isArray(item.candidates)
      ? item.candidates.filter((c): c is string => typeof c === "string") : [];
    if (item.entry.profile === "?" && !candidates.length) continue;  // garbled: not a sensor yet
    out.push({ ...(item.entry as DraftDevice), profile: null, candidates, pending: true });
  }
  return out;
}

/** Whether a device still needs its profile chosen (a pending sensor). */
export function needsProfile(device: DraftDevice): boolean {
  return device.pending === true;
}

/** The draft configuration in pasted text, or an error naming what is wrong. */
export function parseDiscovered(text: string): { config: DraftConfig } | { error: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return { error: String((e as Error).message) };
  }
  const candidates = isObject(parsed) ? [parsed, parsed.draft, parsed.config] : [];
  for (const candidate of candidates) {
    if (isObject(candidate) && Array.isArray(candidate.devices)) {
      const devices = candidate.devices.filter(
        (d): d is DraftDevice => isObject(d) && typeof d.type === "string");
      const pending = isObject(parsed) ? pendingSensors(parsed) : [];
      return { config: { ...candidate, devices: [...devices, ...pending] } as DraftConfig };
    }
  }
  return { error: "devices" };
}

/** The configuration to save: the identified devices, and the pending sensors that were
 * assigned, each with the profile chosen for it (the others stay out: they would not load).
 * ``index`` maps a row of the page to its device in the saved configuration. */
export function configToSave(config: DraftConfig, profiles: (string | null)[],
                             assigned: boolean[]): { config: DraftConfig; index: number[] } {
  const devices: DraftDevice[] = [];
  const index: number[] = [];
  (config.devices ?? []).forEach((device, n) => {
    if (!needsProfile(device)) {
      index.push(devices.length);
      devices.push(device);
    } else if (assigned[n] && profiles[n]) {
      const { pending: _pending, candidates: _candidates, ...entry } = device;
      index.push(devices.length);
      devices.push({ ...entry, type: device.type, profile: profiles[n] });
    } else {
      index.push(-1);
    }
  });
  return { config: { ...config, devices }, index };
}

/** How the device is reached: bus and slave id, a camera URL, a 1-Wire id… */
export function whereOf(device: DraftDevice): string {
  const parts: string[] = [];
  for (const key of ["bus", "slave", "port", "address", "url", "source", "sensor_id", "reader"]) {
    const value = device[key];
    if (typeof value === "string" || typeof value === "number") parts.push(`${key} ${value}`);
  }
  return parts.join(" · ");
}

export function profileOf(device: DraftDevice): string | null {
  return typeof device.profile === "string" && device.profile !== "?" ? device.profile : null;
}

/** A temperature threshold for devices that measure temperature; null for the others. */
export function proposedThreshold(device: DraftDevice, chosen: string | null = null): number | null {
  const measuresTemperature = /temperature|onewire|ds18b20/.test(device.type)
    || (Array.isArray(device.metrics) && device.metrics.includes("temperature"));
  if (!measuresTemperature) return null;
  const profile = chosen ?? profileOf(device);
  return (profile !== null ? PROFILE_THRESHOLDS[profile] : undefined) ?? DEFAULT_THRESHOLD;
}

/** The point id the draft gives the device, or one made from the gateway's id. */
export function proposedPointId(gateway: string, device: DraftDevice, index: number): string {
  return typeof device.point === "string" && device.point ? device.point : `${gateway}.dev${index + 1}`;
}
