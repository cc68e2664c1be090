import type { IncomingHttpHeaders } from 'node:http';
import type { CORSOptions } from 'graphql-yoga';
import { isLoopback } from '../auth/access.js';
import type { BrowserAccess } from '../config.js';

/**
 * What a web browser may do with the API, decided in one place.
 *
 * - A page of another site must not drive the API with the operator's
 *   access: CORS is off unless that site is in CORS_ORIGINS, and a request
 *   carrying a foreign Origin (which is what browsers send for fetch,
 *   EventSource and WebSocket) is refused outright, so no WebSocket or SSE
 *   stream is opened for it either. Clients without an Origin (the CLI, the
 *   SDKs, curl) are not browsers and pass.
 * - DNS rebinding makes the attacker's page same-origin with the server
 *   (`evil.example` resolving to 127.0.0.1), so the Origin check cannot see
 *   it; the Host header can. An open (tokenless) server therefore answers
 *   only to loopback names and ALLOWED_HOSTS. With tokens, the page would
 *   need a token it does not have.
 */
export function createBrowserAccess({ corsOrigins, allowedHosts }: BrowserAccess) {
  const allowlisted = new Set(corsOrigins);
  const hosts = new Set(allowedHosts);

  return {
    /** No Origin (not a browser), the server's own origin, or an allowlisted one. */
    originAllowed(headers: IncomingHttpHeaders | Headers): boolean {
      const origin = header(headers, 'origin');
      if (origin === undefined) return true;
      if (allowlisted.has(origin)) return true;
      const host = header(headers, 'host')?.toLowerCase();
      try {
        return host !== undefined && new URL(origin).host === host;
      } catch {
        return false; // "null" (sandboxed frames, file://) or garbage
      }
    },

    /** Whether an open (tokenless) server may answer a request to this Host. */
    openHostAllowed(headers: IncomingHttpHeaders | Headers): boolean {
      const host = header(headers, 'host')?.toLowerCase();
      if (!host) return false;
      if (hosts.has(host)) return true;
      const name = /^(\[[^\]]*\]|[^:]*)(:\d+)?$/.exec(host)?.[1] ?? '';
      return hosts.has(name) || isLoopback(name) || name.endsWith('.localhost');
    },

    /** Yoga's CORS: headers only for an allowlisted origin; none at all by default. */
    cors(): false | ((request: Request) => CORSOptions) {
      if (allowlisted.size === 0) return false;
      return (request: Request) => {
        const origin = request.headers.get('origin');
        if (!origin || !allowlisted.has(origin)) return false;
        return {
          origin: [origin],
          credentials: true,
          methods: ['GET', 'POST'],
          allowedHeaders: ['authorization', 'content-type', 'accept', 'x-request-id'],
          exposedHeaders: ['x-request-id'],
          maxAge: 600,
        };
      };
    },
  };
}

export type BrowserGuard = ReturnType<typeof createBrowserAccess>;

function header(headers: IncomingHttpHeaders | Headers, name: string): string | undefined {
  // Yoga's Request may carry its own Headers class: duck-typed.
  const value = typeof headers.get === 'function' ? (headers as Headers).get(name) : (headers as IncomingHttpHeaders)[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}
