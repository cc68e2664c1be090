// The servers the bench measures, each in a process of its own so the load
// generator (bench/run.ts) never shares a CPU thread with them:
//   taskwarden  the real server (startTaskwarden), configured from the environment
//   yoga        a bare graphql-yoga server with a trivial mutation: the peer for HTTP requests
//   ws          a raw `ws` server that broadcasts a message to every client: the peer for fan-out
// The parent talks to the child over IPC: the child says {ready, url}; the parent may ask for
// memory (after a GC), for the count of accepted progress reports, and to stop (so a --cpu-prof
// profile is written on exit).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSchema, createYoga } from 'graphql-yoga';
import { WebSocketServer } from 'ws';

type Message = { cmd: 'mem' } | { cmd: 'count' } | { cmd: 'stop' };
const send = (message: unknown) => process.send!(message);
const gc = (globalThis as { gc?: () => void }).gc;

function memory() {
  gc?.();
  gc?.();
  const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
  return { rss, heapUsed, external, arrayBuffers };
}

async function taskwarden() {
  const { loadConfig } = await import('../src/config.js');
  const { startTaskwarden } = await import('../src/server/taskwarden.js');
  const { createLogger } = await import('../src/log.js');
  const config = loadConfig({ ...process.env, PORT: '0', MONITOR_ENABLED: 'false' });
  const server = await startTaskwarden({ config, log: createLogger(config.logLevel, { format: 'json' }) });
  // Every accepted progress report is on the bus (history entry or not): the ingest figure counts them.
  let accepted = 0;
  server.services.bus.listen('task:updated', (change) => {
    if (change.event.type === 'PROGRESS') accepted++;
  });
  const countProgressed = (server.services.bus.listen as (topic: string, listener: (payload: unknown) => void) => () => void).bind(server.services.bus);
  try {
    countProgressed('task:progressed', () => accepted++);
  } catch {
    // an older server without un-recorded progress reports
  }
  return { url: server.url, stop: () => server.stop(), count: () => accepted };
}

async function yoga() {
  let n = 0;
  const app = createYoga({
    schema: createSchema({
      typeDefs: 'type Query { ok: Boolean! } type Mutation { bump(by: Float!): Float! }',
      resolvers: { Query: { ok: () => true }, Mutation: { bump: (_: unknown, { by }: { by: number }) => (n += by) } },
    }),
    logging: false,
    landingPage: false,
    graphiql: false,
  });
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
    count: () => n,
  };
}

async function ws() {
  const server = createServer();
  const sockets = new WebSocketServer({ server });
  // A client that sends "go:<n>" makes the server send every other client a graphql-ws `next`
  // of the same shape and size as Taskwarden's taskUpdated, serialized once.
  sockets.on('connection', (socket) => {
    socket.on('message', (data) => {
      const text = String(data);
      if (!text.startsWith('go:')) return;
      const frame = JSON.stringify({ id: '1', type: 'next', payload: { data: { taskUpdated: { progress: Number(text.slice(3)) } } } });
      for (const client of sockets.clients) if (client !== socket) client.send(frame);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    stop: async () => {
      for (const client of sockets.clients) client.terminate();
      sockets.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    count: () => sockets.clients.size,
  };
}

const kind = process.argv[2];
const started = await ({ taskwarden, yoga, ws } as Record<string, () => Promise<{ url: string; stop(): Promise<void>; count(): number }>>)[kind!]!();
process.on('message', async (message: Message) => {
  if (message.cmd === 'mem') send({ mem: memory() });
  if (message.cmd === 'count') send({ count: started.count() });
  if (message.cmd === 'stop') {
    await started.stop().catch(() => {});
    process.exit(0);
  }
});
send({ ready: true, url: started.url });
