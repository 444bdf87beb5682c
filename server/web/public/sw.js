/* gridsense phone shell: the page and its built assets cached so the app opens on a weak or no
   signal. The API is never cached (live data only; actions queue in IndexedDB instead).
   Scope "/": served by the server at /sw.js. */
const CACHE = "gridsense-shell-v1";
const SHELL = "/";

async function precache() {
  const cache = await caches.open(CACHE);
  const response = await fetch(SHELL, { cache: "no-store" });
  if (!response.ok) return;
  const html = await response.clone().text();
  await cache.put(SHELL, response);
  // The built assets the page names (hashed file names: a new build names new files).
  const assets = [...html.matchAll(/(?:src|href)="(\/[^"]+\.(?:js|css|json|webmanifest|png|svg))"/g)]
    .map((m) => m[1]);
  await cache.addAll([...new Set(assets)]);
}

self.addEventListener("install", (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/api/") || url.pathname.startsWith("/link/")) return;
  if (event.request.mode === "navigate") {
    // The network first (a new build), the cached shell when there is none.
    event.respondWith(fetch(event.request).then((response) => {
      if (response.ok && url.pathname === SHELL) {
        const copy = response.clone();
        caches.open(CACHE).then((cache) => cache.put(SHELL, copy));
      }
      return response;
    }).catch(async () => (await caches.match(SHELL)) || Response.error()));
    return;
  }
  event.respondWith((async () => {
    const cached = await caches.match(event.request);
    if (cached) return cached;
    const response = await fetch(event.request);
    if (response.ok && /\.(js|css|png|svg|json|webmanifest|woff2?)$/.test(url.pathname)) {
      const copy = response.clone();
      caches.open(CACHE).then((cache) => cache.put(event.request, copy));
    }
    return response;
  })());
});
