import { createServer } from 'node:http';
import { connect } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerClientErrors } from '../../api/client-errors';
import { type Loopback, listenOnLoopback } from '../support/loopback';
import { parseRawAnswer as parse, rawRequest } from '../support/raw-http';
import { captureLogger } from '../support/services';
import { until } from '../support/until';

/*
 * Requests Node's HTTP parser refuses never reach the app: without a handler they get a bare status
 * line and no body. They get the API's error shape.
 */
describe('requests the HTTP parser refuses', () => {
  const { logger, lines } = captureLogger('debug');
  let server: Loopback;

  beforeAll(async () => {
    const http = createServer(getRequestListener(() => new Response('routed')));
    answerClientErrors(http, logger);
    server = await listenOnLoopback(http);
  });
  afterAll(async () => {
    await server.close();
  });

  it('an unknown method is a 501 in the one error shape, its request id in the header and the log', async () => {
    const answer = parse(
      await rawRequest(
        server.port,
        'FROB /api/v1/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer oc_secret\r\n\r\n',
      ),
    );
    expect(answer.statusLine).toBe('HTTP/1.1 501 Not Implemented');
    expect(answer.headers.get('content-type')).toBe('application/json');
    expect(answer.headers.get('connection')).toBe('close');
    expect(answer.body.error.code).toBe('method_not_implemented');
    expect(answer.body.error.message).toContain('GET, HEAD, POST');
    expect(answer.headers.get('x-request-id')).toBe(answer.body.error.requestId);
    const logged = lines.find((line) => line.requestId === answer.body.error.requestId);
    expect(logged).toMatchObject({ code: 'HPE_INVALID_METHOD', status: 501 });
    expect(JSON.stringify(lines)).not.toContain('oc_secret');
  });

  it('headers over the limit are a 431, a malformed header line a 400', async () => {
    const large = parse(
      await rawRequest(server.port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
    );
    expect(large.statusLine).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    expect(large.body.error.code).toBe('headers_too_large');

    const malformed = parse(await rawRequest(server.port, 'GET / HTTP/1.1\r\nNo colon here\r\n\r\n'));
    expect(malformed.statusLine).toBe('HTTP/1.1 400 Bad Request');
    expect(malformed.body.error.code).toBe('bad_request');
    expect(malformed.body.error.message).toContain('Malformed HTTP request');
  });

  it('a request that timed out is answered 408 and its connection closed: finished later, it is not served', async () => {
    let served = 0;
    // Node checks the timeouts every connectionsCheckingInterval (30 s by default): shortened here.
    const http = createServer(
      { headersTimeout: 300, requestTimeout: 500, connectionsCheckingInterval: 100 },
      getRequestListener(() => {
        served += 1;
        return new Response('served');
      }),
    );
    answerClientErrors(http, logger);
    const slow = await listenOnLoopback(http);
    try {
      const socket = connect({ port: slow.port, host: '127.0.0.1', allowHalfOpen: true });
      let answer = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        answer += chunk;
      });
      socket.on('error', () => {});
      const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write('POST / HTTP/1.1\r\nHost: x\r\n');
      await until(async () => answer.includes('request_timeout'), 'the 408', { timeoutMs: 5_000 });
      await ended;
      // The client, its side still open, finishes the request after being told it timed out.
      socket.write('Content-Length: 0\r\n\r\n');
      await new Promise((resolve) => setTimeout(resolve, 500));
      socket.destroy();
      expect(parse(answer).statusLine).toBe('HTTP/1.1 408 Request Timeout');
      expect(served).toBe(0);
    } finally {
      await slow.close();
    }
  });

  it('a well-formed request still reaches the app', async () => {
    const answer = await rawRequest(server.port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(answer.startsWith('HTTP/1.1 200 OK')).toBe(true);
    expect(answer.endsWith('routed')).toBe(true);
  });
});
