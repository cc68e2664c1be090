import { createSourceEventStream, execute, getOperationAST, GraphQLError, type DocumentNode, type ExecutionArgs, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Context } from '../graphql/index.js';

/**
 * Subscriptions that asked the same thing share each event's result: the selection set is
 * resolved once per distinct subscription and event, not once per subscriber. A thousand
 * dashboards on one task cost one execution per change.
 *
 * Each subscriber keeps its own stream (its bus queue, its overflow, its replay after
 * `afterEventId`, its filter); only the step that turns an event into a result is shared. A
 * result is shared only by subscribers that hand graphql the very same event object (the
 * feed publishes one object to every stream; a replayed entry is read for its subscriber
 * alone, so it is never shared) and whose subscriptions are the same by `subscriptionKey`.
 */
export function useSharedSubscriptionResults(): Plugin<Record<string, unknown>, Context> {
  return {
    onSubscribe({ subscribeFn, setSubscribeFn }) {
      setSubscribeFn((async (args: ExecutionArgs) => {
        const source = await createSourceEventStream(args);
        // Refused (bad variables, a failed check, no permission): yoga's own engine answers, so the refusal reads as it always did.
        if (!(Symbol.asyncIterator in source)) return subscribeFn(args as never);
        return sharing(args, source);
      }) as never);
    },
  };
}

// Results by event, then by subscription key; gone with the event once no stream holds it.
const resultsByEvent = new WeakMap<object, Map<string, ExecutionResult | Promise<ExecutionResult>>>();
// Parsed documents come from yoga's parser cache, so the same text is the same object.
const documentIds = new WeakMap<DocumentNode, number>();
let nextDocumentId = 0;

/**
 * What a subscription's results may depend on: its document, operation and variables, and
 * who asks as far as the schema looks (authScopes read the principal's role and nothing
 * else, graphql/builder.ts; a refusal names the role only, auth/access.ts). Subscribers
 * with the same key get the same result for the same event.
 */
function subscriptionKey(args: ExecutionArgs): string {
  let documentId = documentIds.get(args.document);
  if (documentId === undefined) documentIds.set(args.document, (documentId = nextDocumentId++));
  const role = (args.contextValue as Context).principal.role;
  return JSON.stringify([documentId, args.operationName ?? null, args.variableValues ?? null, role]);
}

function sharing(args: ExecutionArgs, source: AsyncIterable<unknown>): AsyncGenerator<ExecutionResult> {
  const key = subscriptionKey(args);
  const resultOf = (event: unknown): ExecutionResult | Promise<ExecutionResult> => {
    const run = () => execute({ ...args, rootValue: event });
    if (typeof event !== 'object' || event === null) return run();
    let results = resultsByEvent.get(event);
    if (!results) resultsByEvent.set(event, (results = new Map()));
    let result = results.get(key);
    if (!result) results.set(key, (result = run()));
    return result;
  };
  // As yoga's engine does it: the source's own error (SUBSCRIPTION_OVERFLOW, a revoked token) ends the stream, located at the operation.
  const operation = getOperationAST(args.document, args.operationName);
  return mapEvents(
    source,
    resultOf,
    (error) => new GraphQLError((error as Error).message, { originalError: error as Error, nodes: operation ? [operation] : [] }),
  );
}

/** graphql's own mapping of source events to results (as `subscribe` does it), with ours in its place. */
function mapEvents<T, U>(source: AsyncIterable<T>, map: (event: T) => U | Promise<U>, wrapError: (error: unknown) => Error): AsyncGenerator<U> {
  const iterator = source[Symbol.asyncIterator]();
  const close = async () => {
    try {
      await iterator.return?.();
    } catch {
      // the source's own trouble on the way out changes nothing for its subscriber
    }
  };
  const step = async (result: IteratorResult<T>): Promise<IteratorResult<U>> => {
    if (result.done) return result;
    try {
      return { value: await map(result.value), done: false };
    } catch (error) {
      await close();
      throw error;
    }
  };
  const mapped: AsyncGenerator<U> = {
    next: async () => {
      let result: IteratorResult<T>;
      try {
        result = await iterator.next();
      } catch (error) {
        throw wrapError(error);
      }
      return step(result);
    },
    return: async () => (iterator.return ? step(await iterator.return()) : { value: undefined, done: true }),
    throw: async (error) => {
      if (iterator.throw) return step(await iterator.throw(error));
      throw error;
    },
    [Symbol.asyncIterator]: () => mapped,
    [Symbol.asyncDispose]: async () => {
      await mapped.return(undefined);
    },
  } as AsyncGenerator<U>;
  return mapped;
}
