import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Plugin } from 'graphql-yoga';
import { requestContext } from '../log.js';

/** The caller's X-Request-Id when it is a sane one (so their own logs line up with ours), otherwise a new one. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
}

/** Sends the request id back, in a header and in every error's extensions, so a user's report leads to the log lines. */
export function useRequestId(): Plugin {
  return {
    onResultProcess({ result }) {
      const requestId = requestContext.getStore()?.requestId;
      if (!requestId) return;
      for (const single of Array.isArray(result) ? result : [result]) {
        if (single && typeof single === 'object' && 'errors' in single && single.errors) {
          for (const error of single.errors) Object.assign(error.extensions as Record<string, unknown>, { requestId });
        }
      }
    },
    onResponse({ response }) {
      const requestId = requestContext.getStore()?.requestId;
      if (requestId) response.headers.set('x-request-id', requestId);
    },
  };
}
