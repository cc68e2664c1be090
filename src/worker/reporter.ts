import { TaskwardenClientError, type TaskwardenClient } from '../client/client.js';

export interface Report {
  progress?: number;
  message?: string;
}

interface Pending {
  id: string;
  leaseToken: string;
  report: Report;
  settle: { resolve(): void; reject(error: unknown): void }[];
}

/** At most this many reports in one request (the server's limit for reportProgressBatch). */
const MAX_BATCH = 1000;

/**
 * Every heartbeat and progress report of a worker process, sent together:
 * while one request is in flight the next reports wait, then go as one
 * reportProgressBatch. No timer: a lone report goes at once. A task has at
 * most one report in flight and one waiting; a newer report of the same task
 * merges into the waiting one (its latest progress and message win), so a
 * tight loop costs one row per round trip, never a growing queue.
 */
export function createReporter(client: TaskwardenClient) {
  let waiting = new Map<string, Pending>();
  let sending = false;

  async function drain() {
    sending = true;
    try {
      while (waiting.size > 0) {
        const batch = [...waiting.values()];
        waiting = new Map();
        const chunks: Pending[][] = [];
        for (let i = 0; i < batch.length; i += MAX_BATCH) chunks.push(batch.slice(i, i + MAX_BATCH));
        await Promise.all(chunks.map(send));
      }
    } finally {
      sending = false;
    }
  }

  async function send(chunk: Pending[]) {
    let results: { id: string; accepted: boolean; code?: string | null }[];
    try {
      results = await client.reportProgressBatch(
        chunk.map((p) => ({ id: p.id, leaseToken: p.leaseToken, progress: p.report.progress, message: p.report.message })),
      );
    } catch (error) {
      // A bad value refuses the whole batch: send each alone, so only its own task hears of it.
      if (error instanceof TaskwardenClientError && error.code === 'BAD_USER_INPUT' && chunk.length > 1) {
        await Promise.all(
          chunk.map((p) =>
            client.reportProgress(p.id, p.leaseToken, p.report).then(
              () => p.settle.forEach((s) => s.resolve()),
              (alone: unknown) => p.settle.forEach((s) => s.reject(alone)),
            ),
          ),
        );
        return;
      }
      for (const p of chunk) for (const s of p.settle) s.reject(error);
      return;
    }
    chunk.forEach((p, i) => {
      const result = results[i];
      for (const s of p.settle) {
        if (result?.accepted) s.resolve();
        else
          s.reject(
            new TaskwardenClientError(
              result?.code ?? 'INTERNAL_SERVER_ERROR',
              `The server refused the report on task ${p.id} (${result?.code ?? 'no answer'}).`,
            ),
          );
      }
    });
  }

  return {
    /** Resolves once the server committed this report (or a newer one of the same task that it merged into). */
    report(id: string, leaseToken: string, report: Report): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        const pending = waiting.get(id);
        if (pending && pending.leaseToken === leaseToken) {
          pending.report = { ...pending.report, ...definedOnly(report) };
          pending.settle.push({ resolve, reject });
        } else {
          waiting.set(id, { id, leaseToken, report: definedOnly(report), settle: [{ resolve, reject }] });
        }
        if (!sending) void drain();
      });
    },
  };
}

function definedOnly(report: Report): Report {
  return {
    ...(report.progress !== undefined ? { progress: report.progress } : {}),
    ...(report.message !== undefined ? { message: report.message } : {}),
  };
}
