import { TaskwardenError } from '../errors.js';
import type { EventBus } from '../events.js';
import type { Principal } from '../auth/roles.js';

export type ConnectionRegistry = ReturnType<typeof createConnectionRegistry>;

/**
 * Live connections (graphql-ws sockets, SSE subscription streams): caps how
 * many one token may hold, and how many anonymous ones (open mode: no token,
 * loopback only) one address may hold; closes a token's all when it is
 * revoked, and the anonymous ones when the first token is made.
 */
export function createConnectionRegistry({ maxPerToken, maxAnonymousPerAddress }: { maxPerToken: number; maxAnonymousPerAddress: number }) {
  const byHolder = new Map<string, Set<(reason: string) => void>>();
  const ANONYMOUS = 'open:';

  return {
    /** Registers a connection and returns its release; LIMIT_EXCEEDED past its cap. */
    add(principal: Principal, address: string | undefined, close: (reason: string) => void): () => void {
      const key = principal.tokenId ?? `${ANONYMOUS}${address ?? 'unknown'}`;
      const set = byHolder.get(key) ?? new Set();
      if (principal.tokenId && set.size >= maxPerToken) {
        throw new TaskwardenError('LIMIT_EXCEEDED', `At most ${maxPerToken} live connections per token; close one first.`);
      }
      if (!principal.tokenId && set.size >= maxAnonymousPerAddress) {
        throw new TaskwardenError('LIMIT_EXCEEDED', `At most ${maxAnonymousPerAddress} live connections without a token from one address; close one first.`);
      }
      set.add(close);
      byHolder.set(key, set);
      return () => {
        set.delete(close);
        if (set.size === 0 && byHolder.get(key) === set) byHolder.delete(key);
      };
    },
    /** Closes every connection of a token; `null` for the anonymous ones (open mode), from every address. */
    closeAll(tokenId: string | null, reason: string) {
      const keys = tokenId ? [tokenId] : [...byHolder.keys()].filter((key) => key.startsWith(ANONYMOUS));
      for (const key of keys) for (const close of [...(byHolder.get(key) ?? [])]) close(reason);
    },
    get size() {
      let n = 0;
      for (const set of byHolder.values()) n += set.size;
      return n;
    },
  };
}

/**
 * Wraps a subscription's source so it can be ended from outside: with an
 * `error` (a revoked token) the pending read fails with it; without one
 * (shutdown) the stream completes. Either way the source is closed.
 * `onFinish` runs once, however it ends.
 */
export function endable<T>(source: AsyncIterable<T>, onFinish: () => void): { iterator: AsyncIterableIterator<T>; end(error?: Error): void } {
  const inner = source[Symbol.asyncIterator]();
  let ended: { error?: Error } | undefined;
  let finished = false;
  let wake: ((ending: { error?: Error }) => void) | undefined;
  const stopped = new Promise<IteratorResult<T>>((resolve, reject) => {
    wake = ({ error }) => (error ? reject(error) : resolve({ value: undefined, done: true }));
  });
  stopped.catch(() => {});
  const finish = () => {
    if (!finished) {
      finished = true;
      onFinish();
    }
  };
  const iterator: AsyncIterableIterator<T> = {
    async next() {
      if (ended) {
        if (ended.error) throw ended.error;
        return { value: undefined, done: true };
      }
      try {
        const result = await Promise.race([inner.next(), stopped]);
        if (result.done) finish();
        return result;
      } catch (error) {
        finish();
        throw error;
      }
    },
    async return() {
      finish();
      await inner.return?.();
      return { value: undefined, done: true };
    },
    async throw(error) {
      finish();
      await inner.return?.();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return {
    iterator,
    end(error) {
      if (ended) return;
      ended = { error };
      finish();
      wake?.(ended);
      void inner.return?.();
    },
  };
}

/**
 * A revoked token loses its live connections at once, on every instance; so do the tokenless
 * (open-mode) ones when the first token is made, since that ends open mode. Returns its stop.
 */
export function closeOnTokenChange(bus: EventBus, connections: ConnectionRegistry): () => Promise<void> {
  const changes = bus.subscribe('token:changed');
  void (async () => {
    for await (const change of changes) {
      if (change.tokenId) connections.closeAll(change.tokenId, 'token revoked');
      else connections.closeAll(null, 'a token now exists: reconnect with one');
    }
  })();
  return async () => {
    await changes.return?.();
  };
}
