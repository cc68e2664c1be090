import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  headers: IncomingHttpHeaders;
  body: any;
  status: number;
}

/**
 * A real webhook receiver on a port of its own. `respond` decides each
 * answer's status (default 200), given `delayMs` later; everything received is kept.
 */
export async function startReceiver(respond: (n: number) => number = () => 200, port = 0, { delayMs = 0 }: { delayMs?: number } = {}) {
  const received: Received[] = [];
  let count = 0;
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => {
      const status = respond(++count);
      received.push({ headers: req.headers, body: JSON.parse(text), status });
      // A slow receiver keeps each delivery in flight a while (what a claim must protect).
      setTimeout(() => res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'no'), delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}/hook`,
    port: bound,
    received,
    /** Only what was acknowledged with a 2xx. */
    get accepted() {
      return received.filter((r) => r.status < 300);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
