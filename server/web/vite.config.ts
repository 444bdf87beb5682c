import { defineConfig } from "vite";

// The build lands inside the Python package, which serves it: dist/index.html at "/" and
// dist/assets/* (content-hashed names) with a long cache.
export default defineConfig({
  // JSX compiled by Vite's own esbuild for Preact (no Babel plugin: fewer packages, and all of
  // them run on Debian 12's Node 18).
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  base: "/",
  build: {
    outDir: "../src/gridsense_server/web/dist",  // relative to this folder (the root)
    emptyOutDir: true,
    assetsDir: "assets",
    // The server's CSP allows scripts from 'self' only: no inline polyfill script.
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1500,
    rollupOptions: {
      // ECharts in a file of its own: it changes less often than the app (stays cached).
      output: { manualChunks: (id) => (id.includes("node_modules/echarts") || id.includes("node_modules/zrender") ? "echarts" : undefined) },
    },
    sourcemap: false,
  },
  server: {
    // `npm run dev` against a server on :8000 (docs/frontend.md).
    proxy: { "/api": { target: "http://127.0.0.1:8000", ws: true } },
  },
});
