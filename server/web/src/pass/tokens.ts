// A resident's day of one-minute QR tokens, kept on this phone so the pass still shows in a
// basement without signal. Only the resident's own tokens; cleared on sign-out.
export interface Token { not_before: number; not_after: number; qr: string }
export interface ResidentPass {
  pass_id: string; form: string; name: string; buildings: string[]; not_after: string;
  tokens: Token[];
}

const KEY = "gridsense.pass";
const MAX_CACHE_BYTES = 2_000_000;

export function saveCached(credential: string, pass: ResidentPass): void {
  try {
    const text = JSON.stringify({ credential, pass });
    if (text.length <= MAX_CACHE_BYTES) localStorage.setItem(KEY, text);
  } catch { /* storage full or disabled: online only */ }
}

export function loadCached(credential?: string): ResidentPass | null {
  try {
    const found = JSON.parse(localStorage.getItem(KEY) ?? "null") as
      { credential: string; pass: ResidentPass } | null;
    if (!found || (credential && found.credential !== credential)) return null;
    return found.pass;
  } catch {
    return null;
  }
}

export function clearCached(): void {
  try { localStorage.removeItem(KEY); } catch { /* nothing kept */ }
}

/** The token for this second (phone clock), or null when none is left. */
export function currentToken(pass: ResidentPass, nowS: number): Token | null {
  return pass.tokens.find((tok) => tok.not_before <= nowS && nowS < tok.not_after) ?? null;
}

/** Seconds until the last cached token ends (0: none left). */
export function cachedUntil(pass: ResidentPass): number {
  return pass.tokens.length ? pass.tokens[pass.tokens.length - 1].not_after : 0;
}
