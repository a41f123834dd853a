import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ServerType, serve } from '@hono/node-server';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limitBody } from '../../api/middleware/body-limit';

const MAX = 100;

/** POSTs `chunks` over real HTTP: with Content-Length when `declared`, else chunked. */
function post(port: number, chunks: string[], declared: boolean): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const body = chunks.join('');
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/hook',
        headers: {
          'content-type': 'application/json',
          ...(declared ? { 'content-length': Buffer.byteLength(body) } : { 'transfer-encoding': 'chunked' }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

describe('limitBody over real HTTP', () => {
  let server: ServerType;
  let port: number;

  beforeAll(async () => {
    const app = new Hono().post(
      '/hook',
      limitBody({
        maxBytes: MAX,
        onTooLarge: () => {
          throw new HTTPException(413, { message: 'too large' });
        },
      }),
      async (c) => c.json({ echoed: await c.req.json() }),
    );
    await new Promise<void>((resolve) => {
      server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve());
    });
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const small = JSON.stringify({ text: 'x'.repeat(40) });
  const large = JSON.stringify({ text: 'x'.repeat(MAX * 3) });

  it('passes a body within the limit, declared or chunked, to the handler intact', async () => {
    for (const declared of [true, false]) {
      const res = await post(port, [small.slice(0, 10), small.slice(10)], declared);
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ echoed: JSON.parse(small) });
    }
  });

  it('refuses a body over the limit, declared by Content-Length or counted while chunked', async () => {
    expect((await post(port, [large], true)).status).toBe(413);
    expect(
      (await post(port, [large.slice(0, 60), large.slice(60, 200), large.slice(200)], false)).status,
    ).toBe(413);
  });

  it('takes a body of exactly the limit', async () => {
    const exact = JSON.stringify({ t: 'x'.repeat(MAX - 8) });
    expect(Buffer.byteLength(exact)).toBe(MAX);
    expect((await post(port, [exact], true)).status).toBe(200);
    expect((await post(port, [exact], false)).status).toBe(200);
  });
});
