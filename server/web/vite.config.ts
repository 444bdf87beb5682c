import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// The build lands inside the Python package, which serves it: dist/index.html at "/" and
// dist/assets/* (content-hashed names) with a long cache.
export default defineConfig({
  plugins: [preact()],
  base: "/",
  build: {
    outDir: "../src/gridsense_server/web/dist",  // relative to this folder (the root)
    emptyOutDir: true,
    assetsDir: "assets",
    // The server's CSP allows scripts from 'self' only: no inline polyfill script.
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1500,
    sourcemap: false,
  },
  server: {
    // `npm run dev` against a server on :8000 (docs/frontend.md).
    proxy: { "/api": { target: "http://127.0.0.1:8000", ws: true } },
  },
});
