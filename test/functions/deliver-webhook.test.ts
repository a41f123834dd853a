import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../api/app';
import { sendEventVia } from '../../functions/client';
import { customerEventEmitted } from '../../functions/events';
import { createFunctions } from '../../functions/index';
import { webhookDeliveries } from '../../lib/db/schema';
import { emitCustomerEvent } from '../../lib/webhooks/settings';
import { apiRequest } from '../support/api-request';
import { databaseTargets } from '../support/db';
import { createExecutorHarness, type ExecutorHarness } from '../support/executor';
import { TEST_ADMIN_KEY } from '../support/services';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';

const AGENT_ID = '5f0c2a1e-7d44-4c1b-9a8e-2b7f4d9c1e00';

describe.each(databaseTargets())('customer webhooks end to end on %s', (target) => {
  let harness: ExecutorHarness;
  let app: App;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    harness = await createExecutorHarness({
      target,
      functions: (inngest, services) => createFunctions({ inngest, services }),
    });
    app = createApp(harness.services, {
      sendEvent: async (events) => {
        await harness.inngest.send(events);
      },
    });
    receiver = await startWebhookReceiver();
  });
  afterAll(async () => {
    await receiver.close();
    await harness.close();
  });

  const call = (method: string, path: string, key: string, body?: unknown) =>
    apiRequest(app, method, path, { key, body });

  async function newCustomer(path = '/hook') {
    const res = await call('POST', '/api/v1/admin/customers', TEST_ADMIN_KEY, {
      name: 'Hooked',
      plan: 'pro',
    });
    const created = (await res.json()) as { customer: { id: string }; apiKey: string; webhookSecret: string };
    expect(created.webhookSecret).toMatch(/^whsec_/);
    const put = await call('PUT', '/api/v1/webhook', created.apiKey, { url: `${receiver.url}${path}` });
    expect(put.status).toBe(200);
    return created;
  }

  function emit(
    customerId: string,
    eventId: string,
    type: 'agent.started' | 'agent.stopped' = 'agent.started',
  ) {
    return harness.send(
      customerEventEmitted.create(
        {
          customerId,
          type,
          agentId: AGENT_ID,
          data: type === 'agent.started' ? { status: 'running' } : {},
          eventId,
          occurredAt: new Date().toISOString(),
        },
        { id: `customer-event-${customerId}-${eventId}` },
      ),
    );
  }

  const requestsTo = (path: string) => receiver.requests.filter((request) => request.path.endsWith(path));

  it('sends a signed ping that both the seed snippet and Standard Webhooks verify', async () => {
    const customer = await newCustomer('/ping');
    receiver.script([{ status: 204 }]);
    const res = await call('POST', '/api/v1/webhook/test', customer.apiKey);
    expect(res.status).toBe(202);
    await harness.settle();
    const [received] = requestsTo('/ping');
    expect(received).toBeDefined();
    expect(received?.seedVerifies(customer.webhookSecret)).toBe(true);
    expect(received?.standardVerifies(customer.webhookSecret)).toBe(true);
    expect(JSON.parse(received?.body ?? '{}')).toMatchObject({
      type: 'ping',
      data: {},
      id: expect.any(String),
    });
  });

  it('retries a failing endpoint with the same event id until it succeeds, logging every attempt', async () => {
    const customer = await newCustomer('/flaky');
    receiver.script([
      { status: 500 },
      { status: 503, headers: { 'retry-after': '1' } },
      { status: 200, body: 'ok' },
    ]);
    await emit(customer.customer.id, 'evt-flaky-1');
    await harness.settle();
    const received = requestsTo('/flaky');
    expect(received).toHaveLength(3);
    expect(new Set(received.map((request) => request.headers['webhook-id']))).toEqual(
      new Set(['evt-flaky-1']),
    );
    const body = JSON.parse(received[2]?.body ?? '{}');
    expect(body).toEqual({
      id: 'evt-flaky-1',
      type: 'agent.started',
      agentId: AGENT_ID,
      timestamp: expect.any(String),
      data: { status: 'running' },
    });

    const list = (await (await call('GET', '/api/v1/webhook/deliveries', customer.apiKey)).json()) as {
      deliveries: { id: string; status: string; attempts: number; lastStatusCode: number }[];
    };
    expect(list.deliveries).toHaveLength(1);
    expect(list.deliveries[0]).toMatchObject({ status: 'succeeded', attempts: 3, lastStatusCode: 200 });
    const detail = (await (
      await call('GET', `/api/v1/webhook/deliveries/${list.deliveries[0]?.id}`, customer.apiKey)
    ).json()) as {
      delivery: { attemptLog: { attempt: number; statusCode: number; nextAttemptAt: string | null }[] };
    };
    expect(detail.delivery.attemptLog.map((attempt) => attempt.statusCode)).toEqual([500, 503, 200]);
    expect(detail.delivery.attemptLog[0]?.nextAttemptAt).toEqual(expect.any(String));
    expect(detail.delivery.attemptLog[2]?.nextAttemptAt).toBeNull();
  });

  it('stops at once on 410 Gone and on other 4xx', async () => {
    const customer = await newCustomer('/gone');
    receiver.script([{ status: 410 }]);
    await emit(customer.customer.id, 'evt-gone-1');
    await harness.settle();
    expect(requestsTo('/gone')).toHaveLength(1);
    const list = (await (await call('GET', '/api/v1/webhook/deliveries', customer.apiKey)).json()) as {
      deliveries: { status: string; attempts: number }[];
    };
    expect(list.deliveries[0]).toMatchObject({ status: 'failed', attempts: 1 });
  });

  it('a 2xx answer with NUL in its body is one delivery, not one sent again and again', async () => {
    const customer = await newCustomer('/binary-reply');
    // A gzip body undici does not inflate, or any binary answer, holds NUL.
    receiver.script([{ status: 200, body: 'ok\u0000\u0000' }]);
    await emit(customer.customer.id, 'evt-binary-1');
    await harness.settle();
    expect(requestsTo('/binary-reply')).toHaveLength(1);
    receiver.script([{ status: 200 }]);
    await emit(customer.customer.id, 'evt-binary-2');
    await harness.settle();
    expect(requestsTo('/binary-reply').map((request) => request.headers['webhook-id'])).toEqual([
      'evt-binary-1',
      'evt-binary-2',
    ]);
    const list = (await (await call('GET', '/api/v1/webhook/deliveries', customer.apiKey)).json()) as {
      deliveries: { status: string; attempts: number }[];
    };
    expect(list.deliveries.map((delivery) => delivery.status)).toEqual(['succeeded', 'succeeded']);
  });

  it('an event still retrying goes to the URL the customer has now, and to none once it is cleared', async () => {
    const moved = await newCustomer('/moved-from');
    receiver.script([{ status: 500 }, { status: 200 }]);
    await emit(moved.customer.id, 'evt-moved-1');
    await harness.drain();
    expect(requestsTo('/moved-from')).toHaveLength(1);
    await call('PUT', '/api/v1/webhook', moved.apiKey, { url: `${receiver.url}/moved-to` });
    await harness.settle();
    expect(requestsTo('/moved-from')).toHaveLength(1);
    expect(requestsTo('/moved-to').map((request) => request.headers['webhook-id'])).toEqual(['evt-moved-1']);

    const cleared = await newCustomer('/cleared');
    receiver.script([{ status: 500 }, { status: 200 }]);
    await emit(cleared.customer.id, 'evt-cleared-1');
    await harness.drain();
    const put = await call('PUT', '/api/v1/webhook', cleared.apiKey, { url: null });
    expect(put.status).toBe(200);
    await harness.settle();
    expect(requestsTo('/cleared')).toHaveLength(1);
    const list = (await (await call('GET', '/api/v1/webhook/deliveries', cleared.apiKey)).json()) as {
      deliveries: { status: string; lastError: string }[];
    };
    expect(list.deliveries[0]).toMatchObject({
      status: 'failed',
      lastError: 'webhook URL cleared before the event was delivered',
    });
  });

  it("one customer's event id never stands in the way of the same id of another's", async () => {
    const first = await newCustomer('/tenant-a');
    const second = await newCustomer('/tenant-b');
    receiver.script([{ status: 200 }]);
    await emit(first.customer.id, 'evt-same-id');
    await emit(second.customer.id, 'evt-same-id');
    await harness.settle();
    expect(requestsTo('/tenant-a').map((request) => request.headers['webhook-id'])).toEqual(['evt-same-id']);
    expect(requestsTo('/tenant-b').map((request) => request.headers['webhook-id'])).toEqual(['evt-same-id']);
  });

  it("delivers a customer's events in the order they happened", async () => {
    const customer = await newCustomer('/ordered');
    receiver.script([{ status: 500 }, { status: 200 }]);
    for (const id of ['evt-order-1', 'evt-order-2', 'evt-order-3']) await emit(customer.customer.id, id);
    await harness.settle();
    const firstSuccessOrder = requestsTo('/ordered').map((request) => request.headers['webhook-id']);
    expect(firstSuccessOrder).toEqual(['evt-order-1', 'evt-order-1', 'evt-order-2', 'evt-order-3']);
  });

  it('an event id is delivered once, and a redelivery sends the same event again on request', async () => {
    const customer = await newCustomer('/redeliver');
    receiver.script([{ status: 200 }]);
    await emit(customer.customer.id, 'evt-dup-1');
    await emit(customer.customer.id, 'evt-dup-1');
    await harness.settle();
    expect(requestsTo('/redeliver')).toHaveLength(1);
    const list = (await (await call('GET', '/api/v1/webhook/deliveries', customer.apiKey)).json()) as {
      deliveries: { id: string }[];
    };
    const res = await call(
      'POST',
      `/api/v1/webhook/deliveries/${list.deliveries[0]?.id}/redeliver`,
      customer.apiKey,
    );
    expect(res.status).toBe(202);
    await harness.settle();
    const received = requestsTo('/redeliver');
    expect(received).toHaveLength(2);
    expect(received[1]?.headers['webhook-id']).toBe('evt-dup-1');
    expect(received[1]?.body).toBe(received[0]?.body);
    // With the URL cleared there is nowhere to redeliver to: the 409 names the setting as PUT /webhook does.
    expect((await call('PUT', '/api/v1/webhook', customer.apiKey, { url: null })).status).toBe(200);
    const nowhere = await call(
      'POST',
      `/api/v1/webhook/deliveries/${list.deliveries[0]?.id}/redeliver`,
      customer.apiKey,
    );
    expect(nowhere.status).toBe(409);
    expect(((await nowhere.json()) as { error: { details: unknown } }).error.details).toEqual({
      field: 'url',
    });
  });

  it('signs with both secrets during a rotation grace period, and only the new one after', async () => {
    const customer = await newCustomer('/rotate');
    receiver.script([{ status: 200 }]);
    const rotated = (await (
      await call('POST', '/api/v1/webhook/rotate-secret', customer.apiKey, { gracePeriodHours: 1 })
    ).json()) as { secret: string; webhook: { previousSecretExpiresAt: string } };
    expect(rotated.secret).not.toBe(customer.webhookSecret);
    expect(rotated.webhook.previousSecretExpiresAt).toEqual(expect.any(String));
    await emit(customer.customer.id, 'evt-rotate-1');
    await harness.settle();
    const [during] = requestsTo('/rotate');
    expect(during?.standardVerifies(customer.webhookSecret)).toBe(true);
    expect(during?.standardVerifies(rotated.secret)).toBe(true);
    expect(during?.seedVerifies(rotated.secret)).toBe(true);

    const again = (await (
      await call('POST', '/api/v1/webhook/rotate-secret', customer.apiKey, { gracePeriodHours: 0 })
    ).json()) as { secret: string };
    await emit(customer.customer.id, 'evt-rotate-2');
    await harness.settle();
    const after = requestsTo('/rotate')[1];
    expect(after?.standardVerifies(again.secret)).toBe(true);
    expect(after?.standardVerifies(rotated.secret)).toBe(false);
    expect(after?.standardVerifies(customer.webhookSecret)).toBe(false);
  });

  it('records nothing for a customer without a URL, and refuses a test ping with a clear 409', async () => {
    const res = await call('POST', '/api/v1/admin/customers', TEST_ADMIN_KEY, { name: 'No hook' });
    const created = (await res.json()) as { customer: { id: string }; apiKey: string };
    await emit(created.customer.id, 'evt-nohook-1');
    await harness.settle();
    const list = (await (await call('GET', '/api/v1/webhook/deliveries', created.apiKey)).json()) as {
      deliveries: unknown[];
    };
    expect(list.deliveries).toHaveLength(0);
    const ping = await call('POST', '/api/v1/webhook/test', created.apiKey);
    expect(ping.status).toBe(409);
    expect(((await ping.json()) as { error: { code: string; details: unknown } }).error).toMatchObject({
      code: 'conflict',
      details: { field: 'url' },
    });
  });

  const refusing = async (): Promise<never> => {
    throw new Error('engine down');
  };
  const deliveryRows = (customerId: string) =>
    harness.services.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.customerId, customerId));
  /** Two ticks of the sweep-webhook-outbox cron; the clock is far ahead of the rows' creation. */
  async function sweepTicks() {
    for (let tick = 0; tick < 2; tick++) {
      await harness.advance(60_000);
      await harness.settle();
    }
  }

  it('a delivery stored while the engine refused its event is sent by the outbox sweep, once', async () => {
    const customer = await newCustomer('/outbox');
    receiver.script([{ status: 200 }]);
    const event = {
      customerId: customer.customer.id,
      agentId: AGENT_ID,
      type: 'agent.error' as const,
      data: { code: 'reply_failed', message: 'every retry failed' },
      eventId: 'evt-outbox-1',
      occurredAt: new Date(),
    };
    // Every retry of the step that stored it was refused: the row is all that is left of the event.
    await expect(emitCustomerEvent(harness.services.db, refusing, event)).rejects.toThrow('engine down');
    await expect(emitCustomerEvent(harness.services.db, refusing, event)).rejects.toThrow('engine down');
    const [stored] = await deliveryRows(customer.customer.id);
    expect(stored).toMatchObject({ status: 'pending', eventSentAt: null });

    await sweepTicks();
    const received = requestsTo('/outbox');
    expect(received.map((request) => request.headers['webhook-id'])).toEqual(['evt-outbox-1']);
    const [row] = await deliveryRows(customer.customer.id);
    expect(row).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(row?.eventSentAt).toBeInstanceOf(Date);
    await sweepTicks();
    expect(requestsTo('/outbox')).toHaveLength(1);
  });

  it('a delivery whose event the engine took but whose mark was lost is not sent twice', async () => {
    const customer = await newCustomer('/outbox-taken');
    receiver.script([{ status: 200 }]);
    const row = await emitCustomerEvent(harness.services.db, sendEventVia(harness.inngest), {
      customerId: customer.customer.id,
      agentId: AGENT_ID,
      type: 'agent.stopped',
      data: {},
      eventId: 'evt-outbox-2',
      occurredAt: new Date(),
    });
    expect(row?.id).toEqual(expect.any(String));
    const [marked] = await deliveryRows(customer.customer.id);
    expect(marked?.eventSentAt).toBeInstanceOf(Date);
    await harness.settle();
    await harness.services.db
      .update(webhookDeliveries)
      .set({ eventSentAt: null })
      .where(eq(webhookDeliveries.customerId, customer.customer.id));

    await sweepTicks();
    expect(requestsTo('/outbox-taken')).toHaveLength(1);
    const [swept] = await deliveryRows(customer.customer.id);
    expect(swept).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(swept?.eventSentAt).toBeInstanceOf(Date);
  });

  it('a refused test ping stays failed, and one whose failed mark was lost too is sent late, not lost', async () => {
    const customer = await newCustomer('/outbox-ping');
    receiver.script([{ status: 204 }]);
    const down = createApp(harness.services, { sendEvent: refusing });
    const refused = await apiRequest(down, 'POST', '/api/v1/webhook/test', { key: customer.apiKey });
    expect(refused.status).toBe(503);
    const [failed] = await deliveryRows(customer.customer.id);
    expect(failed).toMatchObject({ status: 'failed', eventSentAt: null });
    await sweepTicks();
    expect(requestsTo('/outbox-ping')).toHaveLength(0);
    const [ended] = await deliveryRows(customer.customer.id);
    expect(ended?.status).toBe('failed');
    expect(ended?.eventSentAt).toBeInstanceOf(Date);

    // The same refusal, but the database did not take the failed mark either: the row stayed pending.
    expect((await apiRequest(down, 'POST', '/api/v1/webhook/test', { key: customer.apiKey })).status).toBe(
      503,
    );
    const second = (await deliveryRows(customer.customer.id)).find((row) => row.id !== failed?.id);
    await harness.services.db
      .update(webhookDeliveries)
      .set({ status: 'pending', lastError: null })
      .where(eq(webhookDeliveries.id, second?.id ?? ''));
    await sweepTicks();
    expect(requestsTo('/outbox-ping')).toHaveLength(1);
    const [late] = (await deliveryRows(customer.customer.id)).filter((row) => row.id === second?.id);
    expect(late).toMatchObject({ status: 'succeeded', attempts: 1 });
  });

  it("another customer's delivery is a 404", async () => {
    const alice = await newCustomer('/alice');
    const mallory = await newCustomer('/mallory');
    receiver.script([{ status: 200 }]);
    await emit(alice.customer.id, 'evt-alice-1');
    await harness.settle();
    const list = (await (await call('GET', '/api/v1/webhook/deliveries', alice.apiKey)).json()) as {
      deliveries: { id: string }[];
    };
    const id = list.deliveries[0]?.id;
    expect((await call('GET', `/api/v1/webhook/deliveries/${id}`, mallory.apiKey)).status).toBe(404);
    expect((await call('POST', `/api/v1/webhook/deliveries/${id}/redeliver`, mallory.apiKey)).status).toBe(
      404,
    );
  });
});

describe('webhook URLs in production', () => {
  it('refuse http and private literal addresses when private targets are not allowed', async () => {
    const harness = await createExecutorHarness({
      target: 'pglite',
      functions: (inngest, services) => createFunctions({ inngest, services }),
      env: { WEBHOOK_ALLOW_PRIVATE_TARGETS: 'false' },
    });
    try {
      const app = createApp(harness.services);
      const created = (await (
        await app.request('/api/v1/admin/customers', {
          method: 'POST',
          headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'Prod' }),
        })
      ).json()) as { apiKey: string };
      for (const url of [
        'http://example.com/hook',
        'https://127.0.0.1/hook',
        'https://169.254.169.254/latest',
        'https://[::1]/x',
      ]) {
        const res = await app.request('/api/v1/webhook', {
          method: 'PUT',
          headers: { authorization: `Bearer ${created.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ url }),
        });
        expect(res.status).toBe(400);
        expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/^body\.url: /);
      }
    } finally {
      await harness.close();
    }
  });
});
