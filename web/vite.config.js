// The static site: relative asset URLs (it is served under a path such as /v1/web/),
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
  },
});
