// The chaos suite's invariants, checked at the end of a run over what it recorded: the database
// (tasks, history, alert outbox, sweep records), the webhook receiver, the subscribers' logs, and what
// clients were told. Pure: test/chaos-checker.test.ts plants a violation of each and expects it caught.

export interface RecordedEvent {
  /** The cursor clients see (TaskEvent.id): `${xact}.${id}`. */
  cursor: string;
  taskId: string;
  type: string;
  actor: string;
  reason: string | null;
  toStatus: string | null;
}

export interface ChaosRecord {
  settings: { heartbeatTimeoutMs: number; intervalMs: number };
  /** Every history entry, in the history's order (xact, id). */
  events: RecordedEvent[];
  tasks: { id: string; status: string }[];
  /** The alert outbox. */
  alerts: { key: string; rule: string; taskId: string | null }[];
  /** Alert ids (keys) the webhook receiver acknowledged, once per delivery. */
  received: string[];
  sweeps: { startedAt: number; finishedAt: number }[];
  /** Task ids whose createTask was answered. */
  created: string[];
  /** Transitions whose mutation was answered: this event type, by this actor, must be on record. */
  acks: { taskId: string; type: string; actor: string }[];
  subscribers: { name: string; fromStart: boolean; cursors: string[] }[];
  /** Running tasks seen (by sampling) silent for this long. */
  silences: { at: number; taskId: string; silentMs: number }[];
  /** When a server process was killed. */
  serverDeaths: number[];
  /** Database outages (a Postgres restart): [from, to] in ms. */
  outages: { from: number; to: number }[];
}

export type Invariant =
  | 'task-lost'
  | 'terminal-changed'
  | 'stale-write-landed'
  | 'running-past-detection'
  | 'stuck-alert'
  | 'acknowledged-missing'
  | 'subscriber-missed'
  | 'subscriber-order'
  | 'subscriber-duplicate'
  | 'sweep-overlap'
  | 'sweep-not-resumed';

export interface Violation {
  invariant: Invariant;
  detail: string;
}

const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
const SYSTEM_ACTORS = new Set(['api', 'operator', 'monitor', 'cli']);
const STUCK_REASONS = new Set(['NO_HEARTBEAT', 'NO_PROGRESS', 'OVERTIME']);
const STUCK_HANDLING = new Set(['STUCK', 'CANCELLED', 'FAILED', 'REQUEUED']);
/** Room for a loaded machine's scheduling (2 shared cores run 3 servers, Postgres, workers and the suite), on top of each bound. */
const SLACK_MS = 2000;

export function checkInvariants(record: ChaosRecord): Violation[] {
  const violations: Violation[] = [];
  const add = (invariant: Invariant, detail: string) => violations.push({ invariant, detail });
  const byTask = new Map<string, RecordedEvent[]>();
  for (const event of record.events) {
    let list = byTask.get(event.taskId);
    if (!list) byTask.set(event.taskId, (list = []));
    list.push(event);
  }
  const rows = new Map(record.tasks.map((t) => [t.id, t]));

  // Every created task exists, or an operator deleted it on record.
  for (const id of record.created) {
    if (rows.has(id)) continue;
    if (!(byTask.get(id) ?? []).some((e) => e.type === 'DELETED' && e.actor !== 'monitor'))
      add('task-lost', `task ${id} was created and is gone with no deletion on record`);
  }

  for (const [taskId, events] of byTask) {
    // At most one terminal state, nothing but a deletion after it, and the row agrees.
    const terminal = events.filter((e) => e.toStatus && TERMINAL.has(e.toStatus));
    if (terminal.length > 1) add('terminal-changed', `task ${taskId} reached ${terminal.map((e) => e.toStatus).join(' then ')}`);
    const first = terminal[0];
    if (first) {
      const after = events.slice(events.indexOf(first) + 1).filter((e) => e.type !== 'DELETED');
      if (after.length) add('terminal-changed', `task ${taskId}: ${after.map((e) => `${e.type} by ${e.actor}`).join(', ')} after ${first.toStatus}`);
    }
    const row = rows.get(taskId);
    if (row && (first ? row.status !== first.toStatus : TERMINAL.has(row.status)))
      add('terminal-changed', `task ${taskId} is ${row.status}, its history says ${first?.toStatus ?? 'never finished'}`);

    // Worker writes land only under the lease of the worker that holds the task.
    let holder: string | null = null;
    for (const event of events) {
      if (event.type === 'STARTED') {
        holder = event.actor;
        continue;
      }
      if (!SYSTEM_ACTORS.has(event.actor) && event.actor !== holder)
        add('stale-write-landed', `task ${taskId}: ${event.type} by ${event.actor} while ${holder ?? 'nobody'} held it`);
      if (event.type !== 'PROGRESS' && event.type !== 'STUCK') holder = null;
    }
  }

  // Each stuck episode handled: one stuck entry, one alert in the outbox, delivered.
  const stuckEntries = new Map<string, number>();
  for (const e of record.events) if (stuckReasonOf(e.reason) && STUCK_HANDLING.has(e.type)) stuckEntries.set(e.taskId, (stuckEntries.get(e.taskId) ?? 0) + 1);
  const stuckAlerts = new Map<string, string[]>();
  for (const a of record.alerts) if (a.rule === 'task.stuck' && a.taskId) stuckAlerts.set(a.taskId, [...(stuckAlerts.get(a.taskId) ?? []), a.key]);
  for (const taskId of new Set([...stuckEntries.keys(), ...stuckAlerts.keys()])) {
    const entries = stuckEntries.get(taskId) ?? 0;
    const alerts = stuckAlerts.get(taskId) ?? [];
    if (entries !== alerts.length) add('stuck-alert', `task ${taskId}: ${entries} stuck entries, ${alerts.length} stuck alerts`);
  }
  const received = new Set(record.received);
  for (const keys of stuckAlerts.values()) for (const key of keys) if (!received.has(key)) add('stuck-alert', `alert ${key} never reached the webhook`);
  const outboxKeys = new Set(record.alerts.map((a) => a.key));
  for (const key of received) if (!outboxKeys.has(key)) add('stuck-alert', `the webhook got ${key}, which is not in the outbox`);

  // Everything a client was told happened is on record.
  for (const id of record.created)
    if (!(byTask.get(id) ?? []).some((e) => e.type === 'CREATED'))
      add('acknowledged-missing', `task ${id}: its creation was acknowledged and is not on record`);
  for (const ack of record.acks) {
    if (!(byTask.get(ack.taskId) ?? []).some((e) => e.type === ack.type && e.actor === ack.actor))
      add('acknowledged-missing', `task ${ack.taskId}: ${ack.type} by ${ack.actor} was acknowledged and is not on record`);
  }

  // Subscribers. Promised: every history entry from the first it got (or from the very first, if it asked
  // for the whole history) to the end, in the history's order, once, whether it stayed connected or resumed
  // with afterEventId. Not promised: the live-only progress reports (`<entry>.<n>`, reports the sampled
  // history did not keep) sent while it was away; resuming replays only the history. Each live-only report
  // it did get must stand where its id says: after the entry it names (and every entry it got before it),
  // before the next entry it gets, and once.
  const index = new Map(record.events.map((e, i) => [e.cursor, i]));
  for (const sub of record.subscribers) {
    // Where the stream stands, in history positions: entry i is i, a live-only report after entry i is i + 0.5.
    let previous = -1;
    let previousCursor = 'the start';
    const seen = new Set<number>();
    const seenLive = new Set<string>();
    // Where its promise starts: the first entry it got, or the entry after the one a live-only report named.
    let start = sub.fromStart ? 0 : record.events.length;
    for (const cursor of sub.cursors) {
      const live = liveOnly(cursor);
      if (live) {
        const base = live === ORIGIN ? -1 : index.get(live);
        if (base === undefined) add('subscriber-order', `${sub.name} got ${cursor}, a live-only report after ${live}, which is not in the history`);
        else if (seenLive.has(cursor)) add('subscriber-duplicate', `${sub.name} got ${cursor} twice`);
        else {
          if (base + 0.5 < previous) add('subscriber-order', `${sub.name} got ${cursor} after ${previousCursor}`);
          seenLive.add(cursor);
          start = Math.min(start, base + 1);
          if (base + 0.5 > previous) [previous, previousCursor] = [base + 0.5, cursor];
        }
        continue;
      }
      const i = index.get(cursor);
      if (i === undefined) add('subscriber-order', `${sub.name} got ${cursor}, which is not in the history`);
      else if (seen.has(i)) add('subscriber-duplicate', `${sub.name} got ${cursor} twice`);
      else {
        if (i < previous) add('subscriber-order', `${sub.name} got ${cursor} after ${previousCursor}`);
        seen.add(i);
        start = Math.min(start, i);
        if (i > previous) [previous, previousCursor] = [i, cursor];
      }
    }
    const missed = record.events.slice(start).filter((_, k) => !seen.has(start + k));
    if (missed.length)
      add('subscriber-missed', `${sub.name} missed ${missed.length} entries, the first ${missed[0]!.cursor} (task ${missed[0]!.taskId}, ${missed[0]!.type})`);
  }

  // One sweeper at a time, and sweeping carries on within an interval of a sweeper's death.
  const sweeps = [...record.sweeps].sort((a, b) => a.startedAt - b.startedAt);
  for (let i = 1; i < sweeps.length; i++) {
    if (sweeps[i]!.startedAt < sweeps[i - 1]!.finishedAt)
      add('sweep-overlap', `a sweep started at ${iso(sweeps[i]!.startedAt)} while another ran until ${iso(sweeps[i - 1]!.finishedAt)}`);
  }
  const { heartbeatTimeoutMs, intervalMs } = record.settings;
  const resumeWithin = intervalMs * 1.1 + SLACK_MS;
  const inOutage = (from: number, to: number) => record.outages.some((o) => o.from <= to && from <= o.to);
  for (const death of record.serverDeaths) {
    if (inOutage(death, death + resumeWithin)) continue;
    if (sweeps.some((s) => s.startedAt > death && s.startedAt <= death + resumeWithin)) continue;
    const next = sweeps.find((s) => s.startedAt > death);
    add(
      'sweep-not-resumed',
      `no sweep within ${resumeWithin} ms of the server death at ${iso(death)} (the next ${next ? `${next.startedAt - death} ms after` : 'never'})`,
    );
  }

  // No task stays running silent past what the monitor's clocks allow (outside database outages and the grace after them).
  const bound = heartbeatTimeoutMs + intervalMs + 1000;
  const afterOutage = heartbeatTimeoutMs + intervalMs + 1000;
  const reported = new Set<string>();
  for (const s of record.silences) {
    if (s.silentMs <= bound + SLACK_MS || reported.has(s.taskId)) continue;
    if (record.outages.some((o) => s.at >= o.from && s.at <= o.to + afterOutage)) continue;
    reported.add(s.taskId);
    add('running-past-detection', `task ${s.taskId} was RUNNING with no heartbeat for ${s.silentMs} ms at ${iso(s.at)} (bound ${bound} ms)`);
  }
  return violations;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The feed's position before any entry: a live-only report before the first entry names it. */
const ORIGIN = '0.0';

/** The entry a live-only report's id names (`<xact>.<id>.<n>` → `<xact>.<id>`), or undefined for a history entry's id. */
function liveOnly(cursor: string): string | undefined {
  const parts = cursor.split('.');
  return parts.length === 3 ? `${parts[0]}.${parts[1]}` : undefined;
}

/** The stuck reason a monitor entry records: a retry adds its backoff ("NO_HEARTBEAT; retry in 31.4s"). */
function stuckReasonOf(reason: string | null): string | undefined {
  const head = reason?.split(';', 1)[0];
  return head && STUCK_REASONS.has(head) ? head : undefined;
}
