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
      return { config: { ...candidate, devices } as DraftConfig };
    }
  }
  return { error: "devices" };
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
  return typeof device.profile === "string" ? device.profile : null;
}

/** A temperature threshold for devices that measure temperature; null for the others. */
export function proposedThreshold(device: DraftDevice): number | null {
  const measuresTemperature = /temperature|onewire|ds18b20/.test(device.type)
    || (Array.isArray(device.metrics) && device.metrics.includes("temperature"));
  if (!measuresTemperature) return null;
  const profile = profileOf(device);
  return (profile !== null ? PROFILE_THRESHOLDS[profile] : undefined) ?? DEFAULT_THRESHOLD;
}

/** The point id the draft gives the device, or one made from the gateway's id. */
export function proposedPointId(gateway: string, device: DraftDevice, index: number): string {
  return typeof device.point === "string" && device.point ? device.point : `${gateway}.dev${index + 1}`;
}
