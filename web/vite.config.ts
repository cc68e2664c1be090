// The dashboard: `npm run build:web` builds it into web/dist, which the server serves at `/`.
// `npm run dev:web` serves it with hot reload and sends the API to a server on port 4000.
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

export default defineConfig({
  plugins: [preact()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    reportCompressedSize: true,
  },
  server: {
    // The SDK's typed client lives in ../src/client.
    fs: { allow: ['..'] },
    proxy: { '/graphql': { target: 'http://127.0.0.1:4000', ws: true } },
  },
});
