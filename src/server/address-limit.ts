import type { Server } from 'node:http';
import type { Logger } from '../log.js';

/**
 * Caps the TCP connections one client address holds open at once. Each
 * keep-alive, SSE or WebSocket connection costs a socket and memory whoever
 * opened it; past the cap a new one is closed before anything is read.
 * Authentication cannot do this: it happens after the connection is made.
 */
export function limitConnectionsPerAddress(server: Server, { max: remoteMax, loopbackMax }: { max: number; loopbackMax: number }, log: Logger): void {
  const open = new Map<string, number>();
  const warned = new Set<string>();
  server.on('connection', (socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    const max = isLoopback(address) ? loopbackMax : remoteMax;
    const count = open.get(address) ?? 0;
    if (count >= max) {
      // Once per address while it stays over the cap, so a flood does not flood the log too.
      if (!warned.has(address)) log.warn({ address, max }, 'too many connections from one address (MAX_CONNECTIONS_PER_ADDRESS): closing new ones');
      warned.add(address);
      socket.destroy();
      return;
    }
    open.set(address, count + 1);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
      warned.delete(address);
    });
  });
}

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6. */
export function isLoopback(address: string): boolean {
  return address === '::1' || /^(::ffff:)?127\./.test(address);
}
