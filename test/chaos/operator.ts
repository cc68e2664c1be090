// The chaos suite's operator and producer, in a process of its own: creates the run's tasks at a
// steady pace, and meanwhile stops, force-completes, deletes and cleans up at random. It reports each
// answered mutation over IPC: what a client was told must be on record at the end.
import { randomInt } from 'node:crypto';

const url = process.env.TASKWARDEN_URL!;
const total = Number(process.env.TASKS);
const perSecond = Number(process.env.RATE);
let seed = Number(process.env.SEED) >>> 0;
const random = () => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const send = (message: Record<string, unknown>) => process.send?.({ ...message, at: Date.now() });
const errors: Record<string, number> = {};
let stopping = false;
process.on('message', (m: any) => m?.type === 'stop' && (stopping = true));
process.on('disconnect', () => process.exit(0));

async function gql(query: string, variables: Record<string, unknown> = {}) {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(15_000),
    });
    const body = (await response.json()) as { data?: any; errors?: { extensions?: { code?: string } }[] };
    if (body.errors?.length) {
      const code = String(body.errors[0]!.extensions?.code ?? 'ERROR');
      errors[code] = (errors[code] ?? 0) + 1;
      return undefined;
    }
    return body.data;
  } catch (error) {
    const code = (error as Error).name === 'TimeoutError' ? 'TIMEOUT' : 'NETWORK';
    errors[code] = (errors[code] ?? 0) + 1;
    return undefined;
  }
}

function params() {
  const r = random();
  const behaviour = r < 0.05 ? 'freeze' : r < 0.12 ? 'fail' : 'ok';
  return { seconds: +(0.3 + random() * 1.7).toFixed(2), behaviour };
}

async function produce() {
  let created = 0;
  let attempts = 0;
  const started = Date.now();
  while (created < total && !stopping) {
    const due = Math.floor(((Date.now() - started) / 1000) * perSecond) - attempts;
    const batch = Array.from({ length: Math.min(Math.max(due, 0), 20) }, () => attempts++);
    await Promise.all(
      batch.map(async (n) => {
        const data = await gql(`mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`, {
          input: { name: `chaos ${n}`, kind: 'backtest', params: params() },
        });
        if (data) {
          created++;
          send({ type: 'created', taskId: data.createTask.id });
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 100));
  }
  send({ type: 'produced', created, attempts });
}

async function pick(status: string) {
  const data = await gql(`query($s: [TaskStatus!]) { tasks(status: $s, first: 30) { edges { node { id } } } }`, { s: [status] });
  const edges = (data?.tasks.edges ?? []) as { node: { id: string } }[];
  return edges.length ? edges[Math.floor(random() * edges.length)]!.node.id : undefined;
}

async function operate() {
  const counts: Record<string, number> = {};
  while (!stopping) {
    await new Promise((r) => setTimeout(r, 200 + randomInt(400)));
    const r = random();
    if (r < 0.15) {
      const id = await pick('RUNNING');
      if (id && (await gql(`mutation($id: ID!) { stopTask(id: $id, reason: "chaos operator") { id } }`, { id }))) {
        counts.stop = (counts.stop ?? 0) + 1;
        send({ type: 'ack', taskId: id, event: 'CANCELLED', actor: 'operator' });
      }
    } else if (r < 0.27) {
      const id = await pick('RUNNING');
      const status = random() < 0.5 ? 'CANCELLED' : 'FAILED';
      if (id && (await gql(`mutation($id: ID!, $s: TaskStatus!) { forceComplete(id: $id, status: $s, reason: "chaos operator") { id } }`, { id, s: status }))) {
        counts.force = (counts.force ?? 0) + 1;
        send({ type: 'ack', taskId: id, event: status, actor: 'operator' });
      }
    } else if (r < 0.37) {
      const id = await pick(random() < 0.5 ? 'COMPLETED' : 'CANCELLED');
      if (id && (await gql(`mutation($id: ID!) { deleteTask(id: $id) }`, { id }))) {
        counts.delete = (counts.delete ?? 0) + 1;
        send({ type: 'ack', taskId: id, event: 'DELETED', actor: 'operator' });
      }
    } else if (r < 0.45) {
      const data = await gql(`mutation { cleanupStuck(autoFix: true) { __typename } }`);
      if (data) counts.cleanup = (counts.cleanup ?? 0) + 1;
    }
  }
  send({ type: 'operated', counts, errors });
}

await Promise.all([produce(), operate()]);
