import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { getRequestListener } from '@hono/node-server';

/** An HTTP server of the test support listening on 127.0.0.1, on a port the system chose. */
export interface Loopback {
  port: number;
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** The open connections, for the fakes that drop them to play a server that went away. */
  sockets: ReadonlySet<Socket>;
  /** Ends the open connections (keep-alive ones included) and stops listening. */
  close(): Promise<void>;
}

export async function listenOnLoopback(server: Server): Promise<Loopback> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    sockets,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Serves `fetch` (a Hono app's) over real HTTP on 127.0.0.1, for the fake Telegram's webhook deliveries. */
export function serveOnLoopback(
  fetch: (request: Request) => Response | Promise<Response>,
): Promise<Loopback> {
  return listenOnLoopback(createServer(getRequestListener(fetch)));
}

/** A 127.0.0.1 port that was just free and is closed again: a connection to it is refused. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
