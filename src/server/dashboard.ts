import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sirv from 'sirv';
import type { Logger } from '../log.js';

/** Where `npm run build:web` puts the dashboard: web/dist of this package. */
export const DEFAULT_DASHBOARD_DIR = fileURLToPath(new URL('../../web/dist', import.meta.url));

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface DashboardOptions {
  /** The built dashboard. Default: {@link DEFAULT_DASHBOARD_DIR}. */
  dir?: string;
  /** Answers everything that is not a dashboard file (yoga's 404). */
  fallback: Handler;
  log: Logger;
}

// The page talks only to its own origin (HTTP and WebSocket), and no other site may frame it:
// its buttons stop and delete tasks.
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

/**
 * Serves the built dashboard's files for GET and HEAD, and nothing outside
 * that folder: sirv lists the folder once and serves only what it found.
 * Vite's hashed assets are cached for good; index.html is revalidated, so a
 * new build shows on the next load.
 */
export function createDashboardHandler({ dir = DEFAULT_DASHBOARD_DIR, fallback, log }: DashboardOptions): Handler {
  if (!existsSync(join(dir, 'index.html'))) {
    log.warn({ dir }, 'the dashboard is not built (npm run build:web): / explains how to build it');
    return (req, res) => {
      if (req.method !== 'GET' || req.url?.split('?', 1)[0] !== '/') return fallback(req, res);
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(`The dashboard is not built. Run \`npm run build:web\` (npm start does it), then reload.\nThe API is at /graphql.\n`);
    };
  }
  const files = sirv(dir, {
    etag: true,
    setHeaders(res, pathname) {
      res.setHeader('cache-control', pathname.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
      for (const [name, value] of Object.entries(PAGE_HEADERS)) res.setHeader(name, value);
    },
  });
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return fallback(req, res);
    files(req, res, () => fallback(req, res));
  };
}
