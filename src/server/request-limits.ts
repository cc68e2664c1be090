import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * Refuses, before any parsing, what a GraphQL endpoint should never take:
 * - a POST that is not JSON: form posts and text/plain are what a hostile page
 *   can send cross-site without a CORS preflight (CSRF), and nothing needs them;
 * - a body without a length, or longer than `maxBodyBytes`.
 * GET stays open for queries (yoga refuses mutations over GET).
 * And it makes every request that cannot be read a 400 BAD_REQUEST that
 * echoes nothing of it: GET `variables={bad` was a 200 with an internal
 * error, and a broken JSON body came back in `extensions.originalError`.
 */
export function useRequestLimits({ path, maxBodyBytes }: { path: string; maxBodyBytes: number }): Plugin {
  return {
    onRequest({ request, url, endResponse, fetchAPI }) {
      if (request.method !== 'POST' || url.pathname !== path) return;
      const refuse = (status: number, message: string) =>
        endResponse(
          new fetchAPI.Response(JSON.stringify({ errors: [{ message, extensions: { code: 'BAD_REQUEST' } }] }), {
            status,
            headers: { 'content-type': 'application/json; charset=utf-8' },
          }),
        );
      const type = request.headers.get('content-type') ?? '';
      if (!/^application\/(graphql-response\+)?json\s*(;|$)/i.test(type)) {
        return refuse(415, 'Send GraphQL requests as JSON (Content-Type: application/json).');
      }
      const length = request.headers.get('content-length');
      if (length === null) return refuse(411, 'A Content-Length header is required.');
      if (!/^\d+$/.test(length) || Number(length) > maxBodyBytes) {
        return refuse(413, `The request body is over the limit of ${maxBodyBytes} bytes (MAX_BODY_BYTES).`);
      }
    },
    onRequestParse({ requestParser, setRequestParser }) {
      if (!requestParser) return;
      setRequestParser(async (request) => {
        try {
          return await requestParser(request);
        } catch (error) {
          if ((error as Error | undefined)?.name === 'AbortError') throw error; // the client went away: nothing to answer
          const message = error instanceof GraphQLError ? error.message : 'The request parameters are not valid JSON (query, variables, extensions).';
          const extensions = error instanceof GraphQLError ? { ...error.extensions } : {};
          delete extensions.originalError;
          // A 400 whatever the client accepts (no `spec` flag, which makes it a 200 for application/json).
          const status = (extensions.http as { status?: number } | undefined)?.status ?? 400;
          throw new GraphQLError(message, { extensions: { code: 'BAD_REQUEST', ...extensions, http: { status } } });
        }
      });
    },
  };
}
