// A resident's day of one-minute QR tokens, kept on this phone so the pass still shows in a
// basement without signal. Only the resident's own tokens; cleared on sign-out.
export interface Token { not_before: number; not_after: number; qr: string }
export interface ResidentPass {
  pass_id: string; form: string; name: string; buildings: string[]; not_after: string;
  server_time: number;
  tokens: Token[];
  skew_s?: number;  // the server's clock minus this phone's, when the day was fetched
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

/** The token for this second (the phone's clock corrected by the skew seen at the fetch: a
 *  gate judges by its own synchronised clock), or null when none is left. */
export function currentToken(pass: ResidentPass, phoneNowS: number): Token | null {
  const nowS = phoneNowS + (pass.skew_s ?? 0);
  return pass.tokens.find((tok) => tok.not_before <= nowS && nowS < tok.not_after) ?? null;
}

/** A fetched day, with the skew between the server's clock and this phone's noted. */
export function withSkew(pass: ResidentPass, phoneNowS: number): ResidentPass {
  return { ...pass, skew_s: Math.round(pass.server_time - phoneNowS) };
}

/** Seconds until the last cached token ends (0: none left). */
export function cachedUntil(pass: ResidentPass): number {
  return pass.tokens.length ? pass.tokens[pass.tokens.length - 1].not_after : 0;
}
