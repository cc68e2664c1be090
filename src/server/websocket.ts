import type { IncomingMessage, Server } from 'node:http';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Principal } from '../auth/roles.js';
import type { Limits } from '../config.js';
import { TaskwardenError } from '../errors.js';
import { maskError } from '../graphql/errors.js';
import type { Context } from '../graphql/index.js';
import type { BrowserGuard } from './browser-access.js';
import type { ConnectionRegistry } from './connections.js';
import type { Authenticate } from './context.js';
import { GRAPHQL_PATH } from './paths.js';

type SocketExtra = {
  request: IncomingMessage;
  socket: WebSocket;
};

type Enveloped = ReturnType<YogaServerInstance<Record<string, unknown>, Context>['getEnveloped']>;

export interface WebSockets {
  /** Asks every socket to go (close code 1001, so clients reconnect elsewhere) and accepts no more. */
  close(): void;
  /** Cuts off the sockets that did not go in time. */
  terminate(): void;
}

/**
 * graphql-ws on the API's path, through yoga's envelop, so WebSocket operations get the same
 * context, plugins and error masking as HTTP. A socket is authenticated when it connects
 * (and counted against its token's connections) and again for each operation.
 */
export function serveWebSockets({
  server,
  yoga,
  authenticate,
  connections,
  guard,
  limits,
}: {
  server: Server;
  yoga: YogaServerInstance<Record<string, unknown>, Context>;
  authenticate: Authenticate;
  connections: ConnectionRegistry;
  guard: BrowserGuard;
  limits: Limits;
}): WebSockets {
  const sockets = new WebSocketServer({
    server,
    path: GRAPHQL_PATH,
    maxPayload: limits.bodyBytes,
    // A page of another site may open a WebSocket to any server: refused before the upgrade.
    verifyClient: ({ req }, done) => (guard.originAllowed(req.headers) ? done(true) : done(false, 403, 'Origin not allowed')),
  });

  useServer<Record<string, unknown>, SocketExtra>(
    {
      execute: (args) => (args.rootValue as Enveloped).execute(args),
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args),
      onConnect: async (ctx) => {
        const { socket } = ctx.extra;
        try {
          const principal = await authenticate(ctx.connectionParams?.authorization, ctx.extra.request.headers, ctx.extra.request.socket.remoteAddress);
          const release = connections.add(principal, ctx.extra.request.socket.remoteAddress, (reason) => socket.close(CloseCode.Unauthorized, reason));
          // Freed with the socket itself: graphql-ws's onClose waits until every subscription's return() settles.
          socket.once('close', release);
          return true;
        } catch (error) {
          const known = error instanceof TaskwardenError;
          const code =
            known && (error.code === 'LIMIT_EXCEEDED' || error.code === 'FORBIDDEN')
              ? CloseCode.Forbidden
              : known && error.code === 'RATE_LIMITED'
                ? CloseCode.TooManyInitialisationRequests
                : CloseCode.Unauthorized;
          socket.close(code, known ? error.message.slice(0, 120) : 'Unauthorized');
          return false;
        }
      },
      onSubscribe: async (ctx, _id, payload) => {
        // graphql-ws has already counted this one in ctx.subscriptions.
        if (Object.keys(ctx.subscriptions).length > limits.subscriptionsPerConnection) {
          return [new GraphQLError(`At most ${limits.subscriptionsPerConnection} subscriptions per connection.`, { extensions: { code: 'LIMIT_EXCEEDED' } })];
        }
        // Who the socket stands for is checked again for each operation (cached, so cheap): a socket
        // that connected in open mode, or with a token revoked since, may not run anything more.
        let principal: Principal;
        try {
          principal = await authenticate(ctx.connectionParams?.authorization, ctx.extra.request.headers, ctx.extra.request.socket.remoteAddress);
        } catch (error) {
          const message = error instanceof TaskwardenError ? error.message : 'Unauthorized';
          ctx.extra.socket.close(CloseCode.Unauthorized, message.slice(0, 120));
          return [maskError(error, 'Unauthorized') as GraphQLError];
        }
        const enveloped = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          principal,
          params: payload,
        });
        let document;
        try {
          document = enveloped.parse(payload.query);
        } catch (error) {
          return [maskError(error, 'Unexpected error.') as GraphQLError];
        }
        const errors = enveloped.validate(enveloped.schema, document);
        if (errors.length > 0) return errors.map((error: GraphQLError) => maskError(error, 'Unexpected error.') as GraphQLError);
        const args: ExecutionArgs = {
          schema: enveloped.schema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue: await enveloped.contextFactory(),
          rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe },
        };
        return args;
      },
    },
    sockets,
  );

  return {
    close() {
      for (const client of sockets.clients) client.close(1001, 'Server shutting down');
      sockets.close();
    },
    terminate() {
      for (const client of sockets.clients) client.terminate();
    },
  };
}
