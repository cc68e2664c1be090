// Live subscribers for the chaos suite, in a process of their own: each follows every task's history
// (taskUpdated) through its own proxy door, and when its connection drops (a server killed, shut down,
// or the database gone) subscribes again with afterEventId = the last entry it got. Their logs go back
// to the suite at the end; the checker wants every entry, in order, once.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const doors = JSON.parse(process.env.DOORS!) as { name: string; url: string; fromStart: boolean }[];
const send = (message: Record<string, unknown>) => process.send?.(message);

const logs = doors.map(({ name, url, fromStart }) => {
  const log = { name, fromStart, cursors: [] as string[], reconnects: 0, closeCodes: {} as Record<string, number> };
  let last: string | undefined = fromStart ? '0' : undefined;
  const connect = () => {
    const client = createClient({
      url,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: true,
      on: {
        closed: (event: any) => {
          const code = String(event?.code ?? '?');
          log.closeCodes[code] = (log.closeCodes[code] ?? 0) + 1;
        },
      },
    });
    const again = () => {
      client.dispose();
      log.reconnects++;
      setTimeout(connect, 250);
    };
    client.subscribe(
      { query: 'subscription($after: ID) { taskUpdated(afterEventId: $after) { id } }', variables: { after: last } },
      {
        next: (message: any) => {
          const id = message.data?.taskUpdated?.id;
          if (!id) return;
          log.cursors.push(id);
          last = id;
        },
        error: again,
        complete: again,
      },
    );
  };
  connect();
  return log;
});

process.on('message', (m: any) => {
  if (m?.type === 'last') send({ type: 'last', cursors: logs.map((l) => l.cursors[l.cursors.length - 1] ?? null) });
  if (m?.type === 'finish') send({ type: 'logs', logs });
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
