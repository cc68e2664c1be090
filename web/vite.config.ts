// The dashboard: `npm run build:web` builds it into web/dist, which the server serves at `/`.
// `npm run dev:web` serves it with hot reload and sends the API to a server on port 4000.
import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

export default defineConfig({
  plugins: [preact()],
  resolve: {
    // The SDK's public entry, as another project imports it (its source here, not the built dist/).
    alias: { 'taskwarden/client': fileURLToPath(new URL('../src/client/index.ts', import.meta.url)) },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    reportCompressedSize: true,
  },
  server: {
    proxy: { '/graphql': { target: 'http://127.0.0.1:4000', ws: true } },
  },
});
