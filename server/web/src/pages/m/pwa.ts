// The installable shell: the service worker (served at /sw.js, scope "/") caches the page so
// it opens on a weak signal. Camera and service workers need a secure context (HTTPS, or
// localhost): on plain HTTP the page says why they are missing and offers what still works.
export function secure(): boolean {
  return window.isSecureContext;
}

export function cameraAvailable(): boolean {
  return secure() && !!navigator.mediaDevices?.getUserMedia;
}

let registered = false;

export function registerWorker(): void {
  if (registered || !secure() || !("serviceWorker" in navigator)) return;
  registered = true;
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch((e) => {
    console.warn("service worker not registered", e);
  });
}
