// The server's message catalogues (GET /api/v1/i18n/{language}): every string a person reads.
// zh-CN first; the choice of language is kept per browser and user (see setLanguage).
import { store, useStore } from "./store";

export type Language = "zh-CN" | "en";
export const LANGUAGES: Language[] = ["zh-CN", "en"];
type Catalogue = Record<string, unknown>;

export const language = store<Language>("zh-CN");
const catalogue = store<Catalogue | null>(null);
const loaded = new Map<Language, Catalogue>();
const PREF_KEY = "gridsense.language";
const CACHE_KEY = "gridsense.catalogue";
// Only the resident's and visitor's pass pages keep the words for a reload without signal; the
// control room and the worker's app store nothing in the browser beyond a language choice.
const keepsCatalogue = (): boolean => /^#\/(r$|r[/?]|v\/)/.test(location.hash);

async function fetchCatalogue(lang: Language): Promise<Catalogue> {
  const cached = loaded.get(lang);
  if (cached) return cached;
  let body: Catalogue;
  try {
    const resp = await fetch(`/api/v1/i18n/${lang}`, { credentials: "same-origin" });
    if (!resp.ok) throw new Error(`catalogue ${lang}: HTTP ${resp.status}`);
    body = (await resp.json()) as Catalogue;
    if (keepsCatalogue()) {
      try { localStorage.setItem(`${CACHE_KEY}.${lang}`, JSON.stringify(body)); } catch { /* full */ }
    }
  } catch (e) {
    // No signal (a resident's pass in a basement): the words this phone last had.
    const kept = (() => { try { return localStorage.getItem(`${CACHE_KEY}.${lang}`); } catch { return null; } })();
    if (!kept) throw e;
    body = JSON.parse(kept) as Catalogue;
  }
  loaded.set(lang, body);
  return body;
}

/** The language a person chose on this browser before (per user name, then any), else the default. */
export function preferredLanguage(fallback: Language, username?: string): Language {
  try {
    const saved = localStorage.getItem(username ? `${PREF_KEY}.${username}` : PREF_KEY);
    if (saved === "zh-CN" || saved === "en") return saved;
  } catch {
    /* storage disabled: the default */
  }
  return fallback;
}

export async function loadLanguage(lang: Language): Promise<void> {
  const body = await fetchCatalogue(lang);
  catalogue.set(body);
  language.set(lang);
  document.documentElement.lang = lang;
}

/** A person's switch: load and remember it (only a chosen language is stored, never a secret). */
export async function setLanguage(lang: Language, username?: string): Promise<void> {
  await loadLanguage(lang);
  try {
    localStorage.setItem(PREF_KEY, lang);
    if (username) localStorage.setItem(`${PREF_KEY}.${username}`, lang);
  } catch {
    /* storage disabled: kept for this page only */
  }
}

function lookup(key: string): unknown {
  let node: unknown = catalogue.get();
  // Section then key; the key itself may hold dots or slashes (zone names).
  const dot = key.indexOf(".");
  const parts = dot < 0 ? [key] : [key.slice(0, dot), key.slice(dot + 1)];
  for (const part of parts) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** The catalogue's text for "section.key", {name} placeholders filled; the key if missing. */
export function t(key: string, params: Record<string, string | number> = {}): string {
  const found = lookup(key);
  const text = typeof found === "string" ? found : key;
  return text.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole);
}

/** The catalogue's name for a code (type, state, severity…), the code itself if unknown. */
function named(section: string, code: string | null | undefined): string {
  if (!code) return "";
  const found = lookup(`${section}.${code}`);
  return typeof found === "string" ? found : code;
}

export const typeName = (code: string | null | undefined) => named("incident_types", code);
export const stateName = (code: string | null | undefined) => named("states", code);
export const severityName = (code: string | null | undefined) => named("severities", code);
export const alarmName = (code: string | null | undefined) => named("alarm", code);
export const actionName = (code: string | null | undefined) => named("actions", code);
export const roleName = (code: string | null | undefined) => named("roles", code);
export const levelName = (code: string | null | undefined) => named("levels", code);
export const channelName = (code: string | null | undefined) => named("channels", code);
export const pageStatusName = (code: string | null | undefined) => named("page_status", code);
export const gatewayStateName = (code: string | null | undefined) => named("gateway_states", code);

/** The codes of a catalogue section (e.g. every incident type), for filters. */
export function codesOf(section: string): string[] {
  const found = lookup(section);
  return found && typeof found === "object" ? Object.keys(found as object) : [];
}

/** Re-render on a language switch; returns the language. */
export function useLanguage(): Language {
  useStore(catalogue);
  return useStore(language);
}
