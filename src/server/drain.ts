import type { Server, ServerResponse } from 'node:http';

/**
 * Lets a stopping server's kept-alive connections go. Without it, a client that keeps sending on a
 * kept-alive connection (a worker, a busy API client) gets each answer with keep-alive, sends its next
 * request on the same connection, holds the drain open until the shutdown timeout, and then has a
 * request cut mid-flight (found by the chaos suite). Once `drain()` is called, every response,
 * including those already being prepared, closes its connection after it is sent.
 */
export function closeConnectionsWhenDraining(server: Server): () => void {
  const answering = new Set<ServerResponse>();
  let draining = false;
  server.on('request', (_request, response: ServerResponse) => {
    if (draining) response.shouldKeepAlive = false;
    answering.add(response);
    response.once('close', () => answering.delete(response));
  });
  return function drain() {
    draining = true;
    for (const response of answering) if (!response.headersSent) response.shouldKeepAlive = false;
  };
}
