import type { PGlite } from '@electric-sql/pglite';
import type { SqlDriverAdapter, SqlDriverAdapterFactory, SqlQuery, Transaction } from '@prisma/driver-adapter-utils';

// A COMMIT can fail (a deferred constraint, a connection lost at that moment): then
// the transaction was rolled back, and its caller must hear so, or it would
// publish changes and alerts that never happened. Neither driver adapter gets
// this right in the versions Prisma 6.19 takes; both fixes are here.

const connecting = <F extends SqlDriverAdapterFactory>(factory: F, wrap: (adapter: SqlDriverAdapter) => void): F => {
  const connect = factory.connect.bind(factory);
  factory.connect = async () => {
    const adapter = await connect();
    wrap(adapter);
    return adapter;
  };
  return factory;
};

/**
 * PostgreSQL (@prisma/adapter-pg): Prisma sends COMMIT itself, and when it
 * throws, never calls the transaction's commit(), which is what returns its
 * connection to the pool. Each failed COMMIT would leak a connection until the
 * pool is exhausted and every query waits forever.
 */
export function releasingOnFailedCommit<F extends SqlDriverAdapterFactory>(factory: F): F {
  return connecting(factory, (adapter) => {
    const start = adapter.startTransaction.bind(adapter);
    adapter.startTransaction = async (isolationLevel) => {
      const transaction: Transaction = await start(isolationLevel);
      const executeRaw = transaction.executeRaw.bind(transaction);
      transaction.executeRaw = async (query: SqlQuery) => {
        try {
          return await executeRaw(query);
        } catch (error) {
          // The server ended the transaction either way; rollback() only releases the connection.
          if (query.sql === 'COMMIT') await transaction.rollback();
          throw error;
        }
      };
      return transaction;
    };
  });
}

type PGliteTransactionStarter = {
  startTransactionInner(conn: Pick<PGlite, 'transaction'>, options: unknown): Promise<{ commit(): Promise<unknown> }>;
};

/**
 * PGlite (pglite-prisma-adapter 0.6) swallows what COMMIT threw: commit()
 * resolves, and Prisma reports a rolled-back transaction as done. Its
 * commit() is made to throw it.
 */
export function reportingFailedCommits<F extends SqlDriverAdapterFactory>(factory: F): F {
  return connecting(factory, (adapter) => {
    const starter = adapter as unknown as PGliteTransactionStarter;
    const start = starter.startTransactionInner.bind(starter);
    starter.startTransactionInner = async (conn, options) => {
      let failure: { error: unknown } | undefined;
      const watched = {
        transaction: ((fn) => {
          const result = conn.transaction(fn);
          result.catch((error: unknown) => (failure = { error }));
          return result;
        }) as PGlite['transaction'],
      };
      const transaction = await start(watched, options);
      const commit = transaction.commit.bind(transaction);
      transaction.commit = async () => {
        const committed = await commit();
        if (failure) throw failure.error;
        return committed;
      };
      return transaction;
    };
  });
}
