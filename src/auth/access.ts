import { TaskwardenError } from '../errors.js';
import type { Logger } from '../log.js';
import { openPrincipal, type Principal } from './roles.js';
import type { TokenService } from './tokens.js';

export type Access = ReturnType<typeof createAccess>;

/**
 * Turns an Authorization header (HTTP) or connectionParams.authorization
 * (graphql-ws) into a Principal. With no token configured at all, everyone
 * is admin: allowed only while the server listens on loopback (see
 * assertSafeToListen), and said loudly in the log.
 */
export function createAccess({ tokens, log }: { tokens: TokenService; log: Logger }) {
  return {
    async authenticate(authorization: unknown): Promise<Principal> {
      const bearer = typeof authorization === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1] : undefined;
      if (authorization != null && authorization !== '' && !bearer) {
        throw unauthenticated('Send the token as "Authorization: Bearer <token>".');
      }
      if (!bearer) {
        if (!(await tokens.any())) return openPrincipal;
        throw unauthenticated('This server requires an API token: send "Authorization: Bearer <token>".');
      }
      const principal = await tokens.verify(bearer);
      if (!principal) throw unauthenticated('The API token is not valid: unknown, revoked or mistyped.');
      return principal;
    },

    /**
     * Refuses to serve an open API beyond this machine. Resolves with whether requests need a token
     * (false: none exists, and the server listens on loopback only, so every request is allowed everything).
     */
    async assertSafeToListen(host: string): Promise<boolean> {
      if (await tokens.any()) return true;
      if (!isLoopback(host)) {
        throw new TaskwardenError(
          'CONFIG_INVALID',
          `HOST=${host} is reachable from other machines, and no API token exists, so anyone could stop or delete tasks. ` +
            'Create one with `npx taskwarden token create --role admin --name <you>` (against the same DATABASE_URL or DATA_DIR, ' +
            'with the server stopped), or set TASKWARDEN_TOKENS=<name>:admin:<secret>; or listen on 127.0.0.1.',
        );
      }
      return false;
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
