import { createServer, type IncomingMessage } from 'node:http';
import { type WebSocket, WebSocketServer } from 'ws';
import { type Loopback, listenOnLoopback } from './loopback';

/**
 * A fake Inngest connect gateway on 127.0.0.1 for the real `connect()` worker of the inngest SDK.
 * It speaks the handshake of Inngest's connect protocol (connect/protobuf/connect.proto in
 * inngest/inngest): `POST /v0/connect/start` answers a StartResponse naming a WebSocket endpoint;
 * on that socket (subprotocol `v0.connect.inngest.com`) the gateway says GATEWAY_HELLO, reads the
 * worker's WORKER_CONNECT and answers GATEWAY_CONNECTION_READY. Messages are protobuf, encoded and
 * read here by field number, without the SDK's generated code.
 */

const PROTOCOL = 'v0.connect.inngest.com';
const SESSION_TOKEN = 'fake-session-token';
const SYNC_TOKEN = 'fake-sync-token';

/** GatewayMessageType values of connect.proto. */
const Kind = { GATEWAY_HELLO: 0, WORKER_CONNECT: 1, GATEWAY_CONNECTION_READY: 2 } as const;

export interface ConnectedWorker {
  connectionId: string;
  sessionToken: string;
  /** Each app the worker registered, with the ids of the functions it serves. */
  apps: { name: string; functionIds: string[] }[];
  /** Message kinds the worker sent after WORKER_CONNECT (heartbeats, pause...). */
  laterKinds: number[];
}

export interface FakeInngestGateway extends Loopback {
  /** Start requests received (`POST /v0/connect/start`). */
  startRequests: number;
  /** Workers that completed the handshake, in order. */
  workers: ConnectedWorker[];
}

export async function startFakeInngestGateway(): Promise<FakeInngestGateway> {
  let nextConnection = 1;
  const server = createServer((request, response) => {
    if (request.method !== 'POST' || request.url !== '/v0/connect/start') {
      response.writeHead(404).end();
      return;
    }
    gateway.startRequests += 1;
    request.resume();
    request.on('end', () => {
      const body = concat([
        stringField(1, `conn-${nextConnection++}`),
        stringField(2, `ws://127.0.0.1:${gateway.port}/v0/connect`),
        stringField(3, 'fake-group'),
        stringField(4, SESSION_TOKEN),
        stringField(5, SYNC_TOKEN),
      ]);
      response.writeHead(200, { 'content-type': 'application/protobuf' }).end(body);
    });
  });
  const sockets = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has(PROTOCOL) ? PROTOCOL : false),
  });
  server.on('upgrade', (request: IncomingMessage, socket, head) => {
    if (request.url !== '/v0/connect') {
      socket.destroy();
      return;
    }
    sockets.handleUpgrade(request, socket, head, (ws) => converse(ws));
  });

  const converse = (ws: WebSocket) => {
    let worker: ConnectedWorker | undefined;
    ws.on('message', (data: Buffer) => {
      const message = readFields(data);
      const kind = Number(message.get(1)?.[0] ?? 0);
      if (worker) {
        worker.laterKinds.push(kind);
        return;
      }
      if (kind !== Kind.WORKER_CONNECT) return;
      worker = readWorkerConnect(bytesOf(message.get(2)?.[0]));
      gateway.workers.push(worker);
      const ready = concat([stringField(1, '10s'), stringField(2, '5s'), stringField(3, '10s')]);
      ws.send(concat([varintField(1, Kind.GATEWAY_CONNECTION_READY), bytesField(2, ready)]));
    });
    ws.send(concat([varintField(1, Kind.GATEWAY_HELLO)]));
  };

  const loopback = await listenOnLoopback(server);
  const gateway: FakeInngestGateway = {
    ...loopback,
    startRequests: 0,
    workers: [],
    async close() {
      for (const client of sockets.clients) client.terminate();
      sockets.close();
      await loopback.close();
    },
  };
  return gateway;
}

function readWorkerConnect(payload: Uint8Array): ConnectedWorker {
  const fields = readFields(payload);
  const auth = readFields(bytesOf(fields.get(3)?.[0]));
  return {
    connectionId: text(fields.get(1)?.[0]),
    sessionToken: text(auth.get(1)?.[0]),
    apps: (fields.get(5) ?? []).map((app) => {
      const appFields = readFields(bytesOf(app));
      const functions = JSON.parse(text(appFields.get(4)?.[0]) || '[]') as { id: string }[];
      return { name: text(appFields.get(1)?.[0]), functionIds: functions.map((fn) => fn.id) };
    }),
    laterKinds: [],
  };
}

type FieldValue = bigint | Uint8Array;

/** Protobuf wire format: varint (0) and length-delimited (2) fields, by field number. */
function readFields(bytes: Uint8Array): Map<number, FieldValue[]> {
  const fields = new Map<number, FieldValue[]>();
  let position = 0;
  const varint = (): bigint => {
    let value = 0n;
    for (let shift = 0n; position < bytes.length; shift += 7n) {
      const byte = bytes[position++] as number;
      value |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return value;
    }
    throw new Error('truncated varint');
  };
  while (position < bytes.length) {
    const tag = Number(varint());
    const wireType = tag & 7;
    let value: FieldValue;
    if (wireType === 0) value = varint();
    else if (wireType === 2) {
      const length = Number(varint());
      value = bytes.subarray(position, position + length);
      position += length;
    } else if (wireType === 1) {
      value = bytes.subarray(position, position + 8);
      position += 8;
    } else if (wireType === 5) {
      value = bytes.subarray(position, position + 4);
      position += 4;
    } else throw new Error(`unsupported wire type ${wireType}`);
    const number = tag >>> 3;
    fields.set(number, [...(fields.get(number) ?? []), value]);
  }
  return fields;
}

function bytesOf(value: FieldValue | undefined): Uint8Array {
  return value instanceof Uint8Array ? value : new Uint8Array();
}

function text(value: FieldValue | undefined): string {
  return Buffer.from(bytesOf(value)).toString('utf8');
}

function varint(value: number): Buffer {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

function varintField(number: number, value: number): Buffer {
  return concat([varint(number << 3), varint(value)]);
}

function bytesField(number: number, value: Uint8Array): Buffer {
  return concat([varint((number << 3) | 2), varint(value.length), value]);
}

function stringField(number: number, value: string): Buffer {
  return bytesField(number, Buffer.from(value, 'utf8'));
}

function concat(parts: Uint8Array[]): Buffer {
  return Buffer.concat(parts);
}
