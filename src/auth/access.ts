import { RateLimiterMemory } from 'rate-limiter-flexible';
import { TaskwardenError } from '../errors.js';
import type { Logger } from '../log.js';
import { openPrincipal, type Principal } from './roles.js';
import type { TokenService } from './tokens.js';

export type Access = ReturnType<typeof createAccess>;

/**
 * Turns an Authorization header (HTTP) or connectionParams.authorization
 * (graphql-ws) into a Principal, and decides whether the server is open.
 *
 * Open mode (no token needed, everyone is admin) is decided once, at start
 * (see decideMode): only for a loopback listener on a database where no token
 * has ever existed. It ends for good when the first token is created, and
 * nothing reopens it: revoking every token leaves a server that wants one.
 */
export function createAccess({ tokens, log, failuresPerMinute = 30 }: { tokens: TokenService; log: Logger; failuresPerMinute?: number }) {
  let open = false;
  let loopbackOnly = true;
  // Failed authentications per client address: past the cap, guesses are refused before any scrypt work.
  const failures = new RateLimiterMemory({ points: failuresPerMinute, duration: 60 });

  /** Whether a tokenless caller is let in: still open mode, and (on every instance) still no token ever made. */
  async function stillOpen(): Promise<boolean> {
    if (open && (await tokens.everExisted())) open = false;
    return open;
  }

  return {
    /**
     * `address` is the client's (the socket's remote address): failed attempts from it are counted,
     * and past AUTH_FAILURES_PER_MINUTE it gets RATE_LIMITED until the minute is over, unless its
     * token was verified lately (a fleet behind one address keeps working past one bad worker).
     */
    async authenticate(authorization: unknown, address?: string): Promise<Principal> {
      const bearer = typeof authorization === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1] : undefined;
      if (!bearer && (authorization == null || authorization === '')) {
        if (await stillOpen()) return openPrincipal;
        throw unauthenticated('This server requires an API token: send "Authorization: Bearer <token>".');
      }
      if (address && !(bearer && tokens.isVerified(bearer))) {
        const state = await failures.get(address);
        if (state && state.consumedPoints >= failuresPerMinute) {
          const retryAfterSeconds = Math.max(1, Math.ceil(state.msBeforeNext / 1000));
          throw new TaskwardenError('RATE_LIMITED', `Too many failed authentications from this address: try again in ${retryAfterSeconds} s.`, {
            retryAfterSeconds,
          });
        }
      }
      const principal = bearer ? await tokens.verify(bearer) : null;
      if (principal) return principal;
      if (address) await failures.penalty(address, 1);
      throw unauthenticated(bearer ? 'The API token is not valid: unknown, revoked or mistyped.' : 'Send the token as "Authorization: Bearer <token>".');
    },

    /**
     * Decides, once, before listening on `host`, whether the server is open, and resolves with
     * whether requests need a token. Refuses to listen beyond this machine with no live token,
     * since such a server could only turn every caller away.
     */
    async decideMode(host: string): Promise<boolean> {
      loopbackOnly = isLoopback(host);
      if (!loopbackOnly && !(await tokens.any())) {
        throw new TaskwardenError(
          'CONFIG_INVALID',
          `HOST=${host} is reachable from other machines, and no API token exists, so nobody could use it safely. ` +
            'Create one with `npx taskwarden token create --role admin --name <you>` (against the same DATABASE_URL or DATA_DIR, ' +
            'with the server stopped), or set TASKWARDEN_TOKENS=<name>:admin:<secret>; or listen on 127.0.0.1.',
        );
      }
      open = loopbackOnly && !(await tokens.everExisted());
      // The open case is announced by the start lines (main.ts); this one would surprise.
      if (!open && !(await tokens.any())) {
        log.warn({ host }, 'Every API token is revoked, so every request is refused. Create one with `npx taskwarden token create --role admin --name <you>`.');
      }
      return !open;
    },

    /**
     * Revokes a token. Beyond loopback, never the last live admin one: nobody
     * could manage tokens over the API again (the CLI on the database still can).
     */
    revokeToken(name: string, revokedBy: string) {
      return tokens.revoke(name, revokedBy, { keepAnAdmin: !loopbackOnly });
    },
  };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export function unauthenticated(message: string) {
  return new TaskwardenError('UNAUTHENTICATED', message);
}

/** A principal whose role lacks the permission an operation needs; `operation` names it as the caller called it. */
export function forbidden(principal: Principal, operation: string) {
  return new TaskwardenError('FORBIDDEN', `A ${principal.role} token may not use ${operation}.`, { role: principal.role });
}
