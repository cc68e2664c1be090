import type { IncomingMessage } from 'node:http';
import { GraphQLError } from 'graphql';
import type { WebSocket } from 'ws';
import { unauthenticated } from '../auth/access.js';
import { actorOf, tokenNameOf, type Principal } from '../auth/roles.js';
import { TaskwardenError } from '../errors.js';
import type { Context } from '../graphql/index.js';
import type { Services } from '../services.js';
import type { BrowserGuard } from './browser-access.js';
import { endable, type ConnectionRegistry } from './connections.js';

/** Who is calling, from the Authorization value, the request's headers (for the open-mode Host rule) and the client's address. */
export type Authenticate = (authorization: unknown, headers: Headers | IncomingMessage['headers'], address: string | undefined) => Promise<Principal>;

export interface RequestAuth {
  authenticate: Authenticate;
  /** Records the principal an HTTP request was admitted as (before parsing), so its context does not ask again. */
  admit(request: Request, principal: Principal): void;
  /** yoga's context factory: HTTP requests, and WebSocket operations (which bring their principal). */
  context(initial: Record<string, unknown>): Promise<Context>;
  /** Completes every SSE subscription stream still open (shutdown); WebSocket ones end with their socket. */
  endStreams(): void;
}

/**
 * The auth context of every operation: who calls (an open, tokenless server answers only to the
 * host names it may be reached by), and the live streams it holds, counted per token.
 */
export function createRequestAuth({ services, guard, connections }: { services: Services; guard: BrowserGuard; connections: ConnectionRegistry }): RequestAuth {
  const authenticate: Authenticate = async (authorization, headers, address) => {
    const principal = await services.access.authenticate(authorization, address);
    if (principal.source === 'open' && !guard.openHostAllowed(headers)) {
      throw new TaskwardenError(
        'FORBIDDEN',
        'This server has no API token, so it answers only to loopback host names (localhost, 127.0.0.1, [::1]) and those in ALLOWED_HOSTS.',
      );
    }
    return principal;
  };
  // HTTP requests are authenticated before anything is parsed or measured (see useAdmission).
  const admitted = new WeakMap<Request, Principal>();
  const streams = new Set<() => void>();

  return {
    authenticate,
    admit: (request, principal) => admitted.set(request, principal),
    async context(initial) {
      const socket = initial.socket as WebSocket | undefined;
      const request = initial.request as Request;
      const principal =
        (initial.principal as Principal | undefined) ??
        admitted.get(request) ??
        (await authenticate(request.headers.get('authorization'), request.headers, (initial.req as IncomingMessage | undefined)?.socket.remoteAddress).catch(
          (error: unknown) => {
            throw asHttpError(error);
          },
        ));
      return {
        services,
        principal,
        actor: actorOf(principal),
        tokenName: tokenNameOf(principal),
        verdicts: new WeakMap(),
        // A WebSocket was registered when it connected; an SSE stream is a connection of its own.
        live: (source) => {
          if (socket) return source;
          let release = () => {};
          const complete = () => end();
          const { iterator, end } = endable(source, () => {
            release();
            streams.delete(complete);
          });
          try {
            release = connections.add(principal, (initial.req as IncomingMessage | undefined)?.socket.remoteAddress, (reason) => end(unauthenticated(reason)));
          } catch (error) {
            void iterator.return?.();
            throw asHttpError(error);
          }
          streams.add(complete);
          return iterator;
        },
      };
    },
    endStreams() {
      for (const complete of [...streams]) complete();
    },
  };
}

/** Refusals that have an HTTP status of their own (401, 429), with their code, instead of a generic 500 or 200. */
function asHttpError(error: unknown): unknown {
  if (!(error instanceof TaskwardenError)) return error;
  const http: { status: number; headers?: Record<string, string> } | undefined =
    error.code === 'UNAUTHENTICATED'
      ? { status: 401, headers: { 'www-authenticate': 'Bearer' } }
      : error.code === 'LIMIT_EXCEEDED'
        ? { status: 429 }
        : error.code === 'RATE_LIMITED'
          ? { status: 429, headers: { 'retry-after': String(error.details.retryAfterSeconds) } }
          : undefined;
  return http ? new GraphQLError(error.message, { extensions: { code: error.code, ...error.details, http } }) : error;
}
