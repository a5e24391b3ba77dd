// The static site (served by the sharing API under /v1/web/, infra/components/web_client.py): relative asset URLs (it is served under a path such as /v1/web/),
// no inline scripts or styles (the Content-Security-Policy allows 'self' only), no
// module-preload polyfill (it would be an inline helper), nothing from another origin.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    target: 'es2022',
    // Fixed names: the program declares each file (infra/components/web_client.py
    // SITE_FILES); responses carry Cache-Control: no-cache, so browsers revalidate.
    rollupOptions: {
      output: {
        entryFileNames: 'assets/hub.js',
        chunkFileNames: 'assets/hub-[name].js',
        assetFileNames: (info) => (info.names?.[0]?.endsWith('.css') ? 'assets/hub.css' : 'assets/[name][extname]'),
      },
    },
  },
});
