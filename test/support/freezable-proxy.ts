import { type AddressInfo, connect, createServer, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of `target` that can go silent: while frozen it holds every
 * byte, both ways, and keeps the connections open (a firewall's black hole, a wedged server).
 */
export interface FreezableProxy {
  port: number;
  /** Connections the client side closed while they were open. */
  readonly closedByClient: number;
  freeze(): void;
  /** Passes on what was held, and what comes next. */
  thaw(): void;
  /** Bytes held while frozen, from clients to the server. */
  readonly heldFromClients: number;
  /** Cuts every open connection, as a server restart does. */
  cut(): void;
  close(): Promise<void>;
}

interface Link {
  client: Socket;
  upstream: Socket;
  held: { to: Socket; chunk: Buffer }[];
}

export async function freezableProxy(target: { host: string; port: number }): Promise<FreezableProxy> {
  let frozen = false;
  let closedByClient = 0;
  const links = new Set<Link>();
  const server = createServer((client) => {
    const link: Link = { client, upstream: connect(target.port, target.host), held: [] };
    const { upstream } = link;
    links.add(link);
    const forward = (to: Socket) => (chunk: Buffer) => {
      if (frozen) link.held.push({ to, chunk });
      else to.write(chunk);
    };
    client.on('data', forward(upstream));
    upstream.on('data', forward(client));
    client.on('close', () => {
      if (links.delete(link)) closedByClient += 1;
      upstream.destroy();
    });
    upstream.on('close', () => {
      links.delete(link);
      client.destroy();
    });
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    get closedByClient() {
      return closedByClient;
    },
    freeze() {
      frozen = true;
    },
    get heldFromClients() {
      let bytes = 0;
      for (const link of links) {
        for (const { to, chunk } of link.held) if (to === link.upstream) bytes += chunk.length;
      }
      return bytes;
    },
    cut() {
      for (const link of links) {
        link.held.length = 0;
        link.upstream.destroy();
      }
    },
    thaw() {
      frozen = false;
      for (const link of links) {
        for (const { to, chunk } of link.held.splice(0)) to.write(chunk);
      }
    },
    async close() {
      for (const link of links) {
        link.client.destroy();
        link.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
