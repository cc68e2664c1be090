// The suite's load balancer: a round-robin TCP proxy on loopback in front of the server processes.
// Each client gets a door (a port) of its own, so the suite can hold one client's traffic: nothing it
// sends or is sent moves until the hold ends, then everything buffered goes through, late.
import { createServer, Socket, type Server } from 'node:net';

interface Pipe {
  held: boolean;
  flush(): void;
  destroy(): void;
}

export interface Balancer {
  /** A new door for one client: its port. */
  door(name: string): Promise<number>;
  /** Holds every connection of this door (and new ones) for `ms`, then lets it all through. */
  hold(name: string, ms: number): Promise<void>;
  close(): Promise<void>;
}

export function createBalancer(backends: number[]): Balancer {
  let next = 0;
  const doors = new Map<string, { server: Server; held: boolean; pipes: Set<Pipe> }>();

  function connectUpstream(attempt: number, done: (upstream: Socket | undefined) => void) {
    if (attempt >= backends.length) return done(undefined);
    const port = backends[next++ % backends.length]!;
    const upstream = new Socket();
    const onError = () => {
      upstream.destroy();
      // A dead backend (killed, restarting) is skipped, as a load balancer's health check would.
      connectUpstream(attempt + 1, done);
    };
    upstream.once('error', onError);
    upstream.connect(port, '127.0.0.1', () => {
      upstream.off('error', onError);
      done(upstream);
    });
  }

  function plumb(client: Socket, door: { held: boolean; pipes: Set<Pipe> }) {
    const toUpstream: Buffer[] = [];
    const toClient: Buffer[] = [];
    let upstream: Socket | undefined;
    let clientEnded = false;
    const pipe: Pipe = {
      held: door.held,
      flush() {
        if (pipe.held) return;
        if (upstream) for (const chunk of toUpstream.splice(0)) upstream.write(chunk);
        for (const chunk of toClient.splice(0)) client.write(chunk);
        if (clientEnded && upstream && !toUpstream.length) upstream.end();
      },
      destroy() {
        client.destroy();
        upstream?.destroy();
      },
    };
    door.pipes.add(pipe);
    client.on('error', () => {});
    client.on('data', (chunk) => {
      toUpstream.push(chunk);
      pipe.flush();
    });
    client.on('end', () => {
      clientEnded = true;
      pipe.flush();
    });
    client.on('close', () => {
      door.pipes.delete(pipe);
      // A held connection's close waits too: the server learns of it only when the hold ends.
      const closeUpstream = () => (pipe.held ? setTimeout(closeUpstream, 50) : upstream?.destroy());
      closeUpstream();
    });
    connectUpstream(0, (socket) => {
      if (!socket) return client.destroy();
      upstream = socket;
      socket.on('error', () => {});
      socket.on('data', (chunk) => {
        toClient.push(chunk);
        pipe.flush();
      });
      socket.on('close', () => {
        const closeClient = () => (pipe.held ? setTimeout(closeClient, 50) : client.destroy());
        closeClient();
      });
      pipe.flush();
    });
  }

  return {
    async door(name) {
      const door = { server: undefined as unknown as Server, held: false, pipes: new Set<Pipe>() };
      door.server = createServer((client) => plumb(client, door));
      doors.set(name, door);
      await new Promise<void>((resolve) => door.server.listen(0, '127.0.0.1', resolve));
      return (door.server.address() as { port: number }).port;
    },
    async hold(name, ms) {
      const door = doors.get(name);
      if (!door) throw new Error(`no door ${name}`);
      door.held = true;
      for (const pipe of door.pipes) pipe.held = true;
      await new Promise((r) => setTimeout(r, ms));
      door.held = false;
      for (const pipe of door.pipes) {
        pipe.held = false;
        pipe.flush();
      }
    },
    async close() {
      for (const door of doors.values()) {
        for (const pipe of door.pipes) pipe.destroy();
        await new Promise<void>((resolve) => door.server.close(() => resolve()));
      }
    },
  };
}
