import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backoffSchedule } from '../../lib/webhooks/backoff';
import {
  DEFAULT_TIMEOUT_MS,
  deliverOnce,
  parseRetryAfter,
  RESPONSE_EXCERPT_BYTES,
  WEBHOOK_USER_AGENT,
} from '../../lib/webhooks/deliver';
import { buildWebhookEvent } from '../../lib/webhooks/events';
import { generateWebhookSecret, signPayload } from '../../lib/webhooks/sign';
import { createWebhookDispatcher, type HostResolver } from '../../lib/webhooks/ssrf';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';

const agentId = '6f1d7c7e-6b55-4a7e-9d43-1b8f0c6f9a10';
const secret = generateWebhookSecret();

function signedEvent(secrets: { current: string; previous?: string } = { current: secret }) {
  const { event, body } = buildWebhookEvent(
    'agent.started',
    agentId,
    { status: 'running' },
    { now: new Date() },
  );
  const headers = signPayload({ id: event.id, timestamp: new Date(), body, secrets });
  return { event, body, headers };
}

let receiver: WebhookReceiver;
beforeAll(async () => {
  receiver = await startWebhookReceiver();
});
afterEach(() => {
  receiver.script([{ status: 200 }]);
  receiver.requests.length = 0;
});
afterAll(async () => {
  await receiver.close();
});

describe('deliverOnce', () => {
  it('delivers a signed event that the receiver verifies with both schemes', async () => {
    receiver.script([{ status: 200, body: 'thanks' }]);
    const { event, body, headers } = signedEvent();
    const result = await deliverOnce({ url: receiver.url, body, headers, allowPrivate: true });

    expect(result).toMatchObject({ outcome: 'success', statusCode: 200, responseExcerpt: 'thanks' });
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    expect(receiver.requests).toHaveLength(1);
    const received = receiver.requests[0]!;
    expect(received.method).toBe('POST');
    expect(received.body).toBe(body);
    expect(JSON.parse(received.body)).toEqual(event);
    expect(received.headers['content-type']).toBe('application/json');
    expect(received.headers['user-agent']).toBe(WEBHOOK_USER_AGENT);
    expect(received.headers['webhook-id']).toBe(event.id);
    expect(received.seedVerifies(secret)).toBe(true);
    expect(received.standardVerifies(secret)).toBe(true);
    expect(received.seedVerifies(generateWebhookSecret())).toBe(false);
    expect(received.standardVerifies(generateWebhookSecret())).toBe(false);
  });

  it('during a rotation the receiver verifies with either secret (seed header: the new one only)', async () => {
    const previous = generateWebhookSecret();
    const current = generateWebhookSecret();
    const { body, headers } = signedEvent({ current, previous });
    await deliverOnce({ url: receiver.url, body, headers, allowPrivate: true });
    const received = receiver.requests[0]!;
    expect(received.standardVerifies(current)).toBe(true);
    expect(received.standardVerifies(previous)).toBe(true);
    expect(received.seedVerifies(current)).toBe(true);
    expect(received.seedVerifies(previous)).toBe(false);
  });

  it.each([
    [200, 'success'],
    [201, 'success'],
    [204, 'success'],
    [299, 'success'],
    [408, 'retry'],
    [429, 'retry'],
    [500, 'retry'],
    [502, 'retry'],
    [503, 'retry'],
    [504, 'retry'],
    [400, 'give_up'],
    [401, 'give_up'],
    [403, 'give_up'],
    [404, 'give_up'],
    [405, 'give_up'],
    [413, 'give_up'],
    [422, 'give_up'],
    [410, 'give_up'],
  ] as const)('classifies %i as %s', async (status, outcome) => {
    receiver.script([{ status, body: `status ${status}` }]);
    const { body, headers } = signedEvent();
    const result = await deliverOnce({ url: receiver.url, body, headers, allowPrivate: true });
    expect(result.outcome).toBe(outcome);
    expect(result.statusCode).toBe(status);
    if (status !== 204) expect(result.responseExcerpt).toBe(`status ${status}`);
    if (outcome !== 'success') expect(result.error).toContain(String(status));
    expect(result.gone === true).toBe(status === 410);
  });

  it.each([301, 302, 303, 307, 308])('does not follow a %i redirect', async (status) => {
    receiver.script([{ status, headers: { location: `${receiver.url}/elsewhere` } }]);
    const { body, headers } = signedEvent();
    const result = await deliverOnce({ url: receiver.url, body, headers, allowPrivate: true });
    expect(result).toMatchObject({ outcome: 'give_up', statusCode: status });
    expect(result.error).toMatch(/redirects are not followed/);
    expect(receiver.requests).toHaveLength(1);
  });

  it('reads Retry-After in seconds and as an HTTP date', async () => {
    receiver.script([{ status: 429, headers: { 'retry-after': '120' } }]);
    const { body, headers } = signedEvent();
    expect(await deliverOnce({ url: receiver.url, body, headers, allowPrivate: true })).toMatchObject({
      outcome: 'retry',
      retryAfterMs: 120_000,
    });

    receiver.script([
      { status: 503, headers: { 'retry-after': new Date(Date.now() + 3_600_000).toUTCString() } },
    ]);
    const dated = await deliverOnce({ url: receiver.url, body, headers, allowPrivate: true });
    expect(dated.outcome).toBe('retry');
    expect(dated.retryAfterMs).toBeGreaterThan(3_590_000);
    expect(dated.retryAfterMs).toBeLessThanOrEqual(3_600_000);

    const now = new Date('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('times out a receiver that answers too slowly, as a retry', async () => {
    receiver.script([{ status: 200, delayMs: 3_000 }]);
    const { body, headers } = signedEvent();
    const result = await deliverOnce({
      url: receiver.url,
      body,
      headers,
      allowPrivate: true,
      timeoutMs: 200,
    });
    expect(result).toMatchObject({ outcome: 'retry', error: 'timed out after 200 ms' });
    expect(result.statusCode).toBeUndefined();
    expect(DEFAULT_TIMEOUT_MS).toBe(15_000);
  });

  it('times out a receiver that takes the connection and never answers the TLS handshake', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    try {
      const { body, headers } = signedEvent();
      const started = performance.now();
      const result = await deliverOnce({
        url: `https://127.0.0.1:${port}/hook`,
        body,
        headers,
        allowPrivate: true,
        timeoutMs: 1_000,
      });
      expect(result).toMatchObject({ outcome: 'retry', error: 'timed out after 1000 ms' });
      // The connection's own bound is 10 s; the attempt's timeout covers the handshake too.
      expect(performance.now() - started).toBeLessThan(5_000);
    } finally {
      silent.close();
    }
  });

  it('keeps only the first KiB of a huge response and stops reading it', async () => {
    const total = 64 * 1024 * 1024;
    receiver.script([{ status: 200, bodyBytes: total }]);
    const { body, headers } = signedEvent();
    const result = await deliverOnce({ url: receiver.url, body, headers, allowPrivate: true });
    expect(result.outcome).toBe('success');
    expect(result.responseExcerpt).toBe('x'.repeat(RESPONSE_EXCERPT_BYTES));
    // Give the server a moment to notice the closed connection, then check it was not drained.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(receiver.streamedBytes()).toBeLessThan(total);
  });

  it('decodes a multi-byte excerpt without throwing when cut mid-character', async () => {
    receiver.script([{ status: 500, body: 'é'.repeat(1000) }]);
    const { body, headers } = signedEvent();
    const result = await deliverOnce({ url: receiver.url, body, headers, allowPrivate: true });
    expect(result.outcome).toBe('retry');
    expect(Buffer.byteLength(result.responseExcerpt ?? '')).toBeLessThanOrEqual(RESPONSE_EXCERPT_BYTES + 2);
    expect(result.responseExcerpt?.startsWith('éé')).toBe(true);
  });

  it('treats a refused connection as a retry', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as { port: number };
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const { body, headers } = signedEvent();
    const result = await deliverOnce({
      url: `http://127.0.0.1:${port}/hooks`,
      body,
      headers,
      allowPrivate: true,
    });
    expect(result.outcome).toBe('retry');
    expect(result.error).toMatch(/ECONNREFUSED/);
  });

  it.each([
    ['an invalid URL', 'not a url', true, /invalid webhook URL/],
    ['http without private targets', 'http://hooks.example.com/x', false, /must use https/],
    ['a non-http scheme', 'file:///etc/passwd', true, /must use https/],
    ['credentials in the URL', 'http://u:p@127.0.0.1:1/x', true, /credentials/],
  ])('gives up on %s without sending', async (_, url, allowPrivate, error) => {
    const { body, headers } = signedEvent();
    const result = await deliverOnce({ url, body, headers, allowPrivate });
    expect(result.outcome).toBe('give_up');
    expect(result.error).toMatch(error);
  });

  it('gives up on a target the SSRF guard refuses, without reaching it', async () => {
    const resolve: HostResolver = async () => [{ address: '127.0.0.1', family: 4 }];
    const dispatcher = createWebhookDispatcher({ allowPrivate: false, resolve });
    const { body, headers } = signedEvent();
    try {
      const result = await deliverOnce({
        url: `https://hooks.customer.test:${receiver.port}/hooks`,
        body,
        headers,
        allowPrivate: false,
        dispatcher,
      });
      expect(result.outcome).toBe('give_up');
      expect(result.error).toMatch(
        /refused: hooks\.customer\.test resolves to 127\.0\.0\.1, a blocked address/,
      );
      expect(receiver.requests).toHaveLength(0);
    } finally {
      await dispatcher.close();
    }
  });

  it('retries [500, 500, 200] with the same event id, signing each attempt afresh', async () => {
    receiver.script([{ status: 500 }, { status: 500 }, { status: 200 }]);
    const { event, body } = buildWebhookEvent('ping', agentId, {}, { now: new Date() });
    const outcomes: string[] = [];
    const waits: (number | undefined)[] = [];
    for (let attempt = 1; attempt <= 5; attempt += 1) {
      const headers = signPayload({
        id: event.id,
        timestamp: new Date(),
        body,
        secrets: { current: secret },
      });
      const result = await deliverOnce({ url: receiver.url, body, headers, allowPrivate: true });
      outcomes.push(result.outcome);
      if (result.outcome !== 'retry') break;
      waits.push(backoffSchedule(attempt, () => 0.5));
    }
    expect(outcomes).toEqual(['retry', 'retry', 'success']);
    expect(waits).toEqual([30_000, 120_000]);
    expect(receiver.requests.map((r) => r.headers['webhook-id'])).toEqual([event.id, event.id, event.id]);
    expect(receiver.requests.every((r) => r.seedVerifies(secret) && r.standardVerifies(secret))).toBe(true);
  });
});
