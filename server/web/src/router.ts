// The hash router: "#/<page>/<rest...>?<query>". A page is a folder under src/pages/ and one line
// in routes.ts. Links in messages arrive as "#incident=<id>" (the server's /link redirect) and
// are taken to the board's detail.
import { useEffect, useState } from "preact/hooks";

export interface Location {
  page: string;            // "board", "plan", ... ("" for none)
  rest: string[];          // path segments after the page, decoded
  query: URLSearchParams;  // after "?"
}

export function parseHash(hash: string): Location {
  const legacy = hash.match(/^#incident=([0-9A-Za-z]+)$/);
  if (legacy) return { page: "board", rest: [legacy[1]], query: new URLSearchParams() };
  const body = hash.replace(/^#\/?/, "");
  const [path, search = ""] = body.split("?", 2);
  const segments = path.split("/").filter(Boolean).map((s) => decodeURIComponent(s));
  return { page: segments[0] ?? "", rest: segments.slice(1), query: new URLSearchParams(search) };
}

export function hrefOf(page: string, rest: string[] = [],
                       query?: Record<string, string | undefined> | URLSearchParams): string {
  const path = [page, ...rest].map(encodeURIComponent).join("/");
  const params = query instanceof URLSearchParams ? query : new URLSearchParams(
    Object.entries(query ?? {}).filter((e): e is [string, string] => !!e[1]));
  const search = params.toString();
  return `#/${path}${search ? `?${search}` : ""}`;
}

/** Go there; `replace` keeps the back button's history clean (filters, closing a detail). */
export function navigate(href: string, replace = false): void {
  if (location.hash === href) return;
  if (replace) {
    history.replaceState(null, "", href);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else {
    location.hash = href;
  }
}

export function useLocation(): Location {
  const [loc, setLoc] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const changed = () => setLoc(parseHash(location.hash));
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return loc;
}
