import type { Plugin } from 'graphql-yoga';

/**
 * Refuses, before any parsing, what a GraphQL endpoint should never take:
 * - a POST that is not JSON: form posts and text/plain are what a hostile page
 *   can send cross-site without a CORS preflight (CSRF), and nothing needs them;
 * - a body without a length, or longer than `maxBodyBytes`.
 * GET stays open for queries (yoga refuses mutations over GET).
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
  };
}
