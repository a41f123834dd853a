import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import type { ErrorBody } from '../../lib/errors';
import type { JobEvent } from '../../lib/jobs';
import { databaseTargets } from '../support/db';
import { CLAUDE_KEY, json, TELEGRAM_TOKEN, useApiHarness } from './harness';

interface DeliveryView {
  id: string;
  status: string;
  lastError: string | null;
  redeliveryOf: string | null;
}

describe.each(databaseTargets())('a jobs engine that does not take an event, on %s', (target) => {
  const sent: JobEvent[] = [];
  let engineDown = false;
  /** Runs before a refused send: what the engine (or the database) did before the send failed. */
  let beforeRefusal: ((events: JobEvent[]) => Promise<void>) | undefined;
  const harness = useApiHarness(
    target,
    {},
    {
      sendEvent: async (events) => {
        await beforeRefusal?.(events);
        if (engineDown) throw new Error('connect ECONNREFUSED 127.0.0.1:8288');
        sent.push(...events);
      },
    },
  );

  async function hookedCustomer() {
    const customer = await harness.createCustomer();
    const put = await harness.call('PUT', '/api/v1/webhook', {
      key: customer.apiKey,
      body: { url: 'http://127.0.0.1:9/hook' },
    });
    expect(put.status).toBe(200);
    return customer;
  }

  const deliveries = async (apiKey: string) =>
    (
      await json<{ deliveries: DeliveryView[] }>(
        await harness.call('GET', '/api/v1/webhook/deliveries', { key: apiKey }),
      )
    ).deliveries;

  async function expectUnavailable(res: Response) {
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    const body = await json<ErrorBody>(res);
    expect(body.error.code).toBe('service_unavailable');
    expect(JSON.stringify(body)).not.toContain('ECONNREFUSED');
  }

  it('a test ping answers 503 and its delivery is failed, not left pending with nothing to send it', async () => {
    const { apiKey } = await hookedCustomer();
    engineDown = true;
    try {
      await expectUnavailable(await harness.call('POST', '/api/v1/webhook/test', { key: apiKey }));
    } finally {
      engineDown = false;
    }
    const [refused] = await deliveries(apiKey);
    expect(refused).toMatchObject({ status: 'failed', lastError: expect.stringContaining('jobs engine') });

    const retried = await harness.call('POST', '/api/v1/webhook/test', { key: apiKey });
    expect(retried.status).toBe(202);
    const { delivery } = await json<{ delivery: DeliveryView }>(retried);
    expect(delivery.status).toBe('pending');
    expect(sent.some((event) => event.id === `delivery-${delivery.id}`)).toBe(true);
  });

  it('a redelivery answers 503, is failed, and is audited as a failure, not as done', async () => {
    const { apiKey } = await hookedCustomer();
    const ping = await json<{ delivery: DeliveryView }>(
      await harness.call('POST', '/api/v1/webhook/test', { key: apiKey }),
    );
    const path = `/api/v1/webhook/deliveries/${ping.delivery.id}/redeliver`;
    engineDown = true;
    try {
      await expectUnavailable(await harness.call('POST', path, { key: apiKey }));
    } finally {
      engineDown = false;
    }
    const refused = (await deliveries(apiKey)).find((row) => row.redeliveryOf === ping.delivery.id);
    expect(refused).toMatchObject({ status: 'failed', lastError: expect.stringContaining('jobs engine') });
    const audited = async () =>
      (
        await json<{ entries: { target: { id: string }; outcome: string }[] }>(
          await harness.call('GET', '/api/v1/audit-log?action=webhook.redeliver', { key: apiKey }),
        )
      ).entries;
    expect((await audited()).map((entry) => [entry.target.id, entry.outcome])).toEqual([
      [refused?.id, 'failure'],
    ]);

    const retried = await harness.call('POST', path, { key: apiKey });
    expect(retried.status).toBe(202);
    const { delivery } = await json<{ delivery: DeliveryView }>(retried);
    expect((await audited()).map((entry) => [entry.target.id, entry.outcome])).toEqual([
      [delivery.id, 'success'],
      [refused?.id, 'failure'],
    ]);
  });

  /** A test ping whose send fails after `before` ran; the engine is up again after it. */
  async function refusedPing(apiKey: string, before: (deliveryId: string) => Promise<void>) {
    engineDown = true;
    beforeRefusal = async (events) => before(String(events[0]?.data.deliveryId));
    try {
      return await harness.call('POST', '/api/v1/webhook/test', { key: apiKey });
    } finally {
      engineDown = false;
      beforeRefusal = undefined;
    }
  }

  it('a send that timed out after the engine delivered the ping is the 202 it was, the delivery as the engine left it', async () => {
    const { apiKey } = await hookedCustomer();
    const res = await refusedPing(apiKey, async (deliveryId) => {
      await harness.services.db.execute(
        sql`update webhook_deliveries set status = 'succeeded', attempts = 1, delivered_at = now() where id = ${deliveryId}::uuid`,
      );
    });
    expect(res.status).toBe(202);
    const answered = await json<{ delivery: DeliveryView }>(res);
    expect(answered.delivery).toMatchObject({ status: 'succeeded', lastError: null });
    const [delivery] = await deliveries(apiKey);
    expect(delivery).toMatchObject({ id: answered.delivery.id, status: 'succeeded', lastError: null });
  });

  it('a refused send is still a 503 when marking its delivery failed fails too', async () => {
    const { apiKey } = await hookedCustomer();
    const { db } = harness.services;
    const res = await refusedPing(apiKey, async () => {
      await db.execute(
        sql`alter table webhook_deliveries add constraint test_refuse_failed check (status <> 'failed') not valid`,
      );
    });
    await db.execute(sql`alter table webhook_deliveries drop constraint test_refuse_failed`);
    await expectUnavailable(res);
  });

  it('a validation request answers 503 with a retry hint, not a 500', async () => {
    const { apiKey } = await harness.createCustomer();
    const agentId = await harness.createAgent(apiKey);
    const credentials = `/api/v1/agents/${agentId}/credentials`;
    await harness.call('PUT', `${credentials}/telegram`, { key: apiKey, body: { botToken: TELEGRAM_TOKEN } });
    await harness.call('PUT', `${credentials}/claude`, { key: apiKey, body: { apiKey: CLAUDE_KEY } });
    engineDown = true;
    try {
      await expectUnavailable(await harness.call('POST', `${credentials}/validate`, { key: apiKey }));
    } finally {
      engineDown = false;
    }
  });
});
