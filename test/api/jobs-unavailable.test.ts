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
  const harness = useApiHarness(
    target,
    {},
    {
      sendEvent: async (events) => {
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

  it('a redelivery answers 503, is failed, and is not audited as done', async () => {
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
        await json<{ entries: { target: { id: string } }[] }>(
          await harness.call('GET', '/api/v1/audit-log?action=webhook.redeliver', { key: apiKey }),
        )
      ).entries;
    expect(await audited()).toEqual([]);

    const retried = await harness.call('POST', path, { key: apiKey });
    expect(retried.status).toBe(202);
    const { delivery } = await json<{ delivery: DeliveryView }>(retried);
    expect((await audited()).map((entry) => entry.target.id)).toEqual([delivery.id]);
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
