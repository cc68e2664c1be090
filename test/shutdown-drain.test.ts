import { expect, it } from 'vitest';
import { describeEachDatabase } from './support/databases.js';
import { spawnServer } from './support/process.js';

// Found by the chaos suite: at SIGTERM, a client that kept sending on kept-alive connections got each
// answer with keep-alive and sent its next request on the same connection, so the drain lasted until
// SHUTDOWN_TIMEOUT and then requests were cut mid-flight. Now the answers sent once the stop began
// close their connections, and the drain ends as soon as what was in flight is answered.
describeEachDatabase('shutdown under a busy kept-alive client [%s]', (kind) => {
  it('ends its drain by itself, exits 0, and cuts no answered request', { timeout: 120_000 }, async () => {
    const database: Record<string, string> = kind === 'pglite' ? { DATA_DIR: 'memory' } : { DATABASE_URL: process.env.TEST_DATABASE_URL! };
    // Far longer than the test may take: only a drain that ends by itself lets it pass.
    const server = await spawnServer({ ...database, SHUTDOWN_TIMEOUT: '10m', MONITOR_ENABLED: 'false' });
    const outcomes: Record<string, number> = {};
    const count = (outcome: string) => void (outcomes[outcome] = (outcomes[outcome] ?? 0) + 1);
    let firing = true;
    const inFlight: Promise<void>[] = [];
    // fetch keeps its connections alive and reuses them, as the SDK's client does.
    const fire = () =>
      fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: 'mutation { createTask(input: { name: "in flight" }) { id } }' }),
      }).then(
        async (response) => count((await response.text()).includes('createTask') ? 'answered' : `status ${response.status}`),
        (error: Error & { cause?: { code?: string } }) => count(error.cause?.code ?? error.message),
      );
    const firing_ = (async () => {
      while (firing) {
        inFlight.push(fire());
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    while ((outcomes.answered ?? 0) < 20) await new Promise((r) => setTimeout(r, 10));
    server.child.kill('SIGTERM');
    const code = await server.exited;
    firing = false;
    await firing_;
    await Promise.all(inFlight);
    expect(code).toBe(0);
    expect(server.output()).not.toContain('did not finish in time');
    // Answered, or refused before it was read: a new connection refused, or a connection the server had closed as idle.
    expect(Object.keys(outcomes).filter((o) => !['answered', 'ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET'].includes(o))).toEqual([]);
  });
});
