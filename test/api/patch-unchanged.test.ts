import { describe, expect, it } from 'vitest';
import { databaseTargets } from '../support/db';
import { json, useApiHarness } from './harness';

interface Versioned {
  updatedAt: string;
}

/* A PATCH that sets what is already stored changes nothing, so `updatedAt` still says when something did. */
describe.each(databaseTargets())('a PATCH that changes nothing on %s', (target) => {
  const harness = useApiHarness(target);
  const pause = () => new Promise((resolve) => setTimeout(resolve, 20));

  it('leaves an agent’s updatedAt, arrays and normalised values included; a real change moves it', async () => {
    const { apiKey } = await harness.createCustomer({ plan: 'pro' });
    const id = await harness.createAgent(apiKey, {
      name: 'Support',
      telegramAllowFrom: ['42', '@alice'],
      botUsername: 'acme_bot',
    });
    const patch = async (body: Record<string, unknown>) => {
      const res = await harness.call('PATCH', `/api/v1/agents/${id}`, { key: apiKey, body });
      expect(res.status).toBe(200);
      return { agent: (await json<{ agent: Versioned }>(res)).agent, etag: res.headers.get('ETag') };
    };
    const before = await patch({ name: 'Support' });
    await pause();
    const same = await patch({
      name: 'Support',
      telegramAllowFrom: ['42', '@alice', '42'],
      botUsername: '@acme_bot',
    });
    expect(same.agent.updatedAt).toBe(before.agent.updatedAt);
    expect(same.etag).toBe(before.etag);
    await pause();
    const changed = await patch({ name: 'Sales' });
    expect(changed.agent.updatedAt > before.agent.updatedAt).toBe(true);
    expect(changed.etag).not.toBe(before.etag);
  });

  it('leaves a customer’s updatedAt; a real change moves it', async () => {
    const { id } = await harness.createCustomer({
      name: 'Acme',
      plan: 'pro',
      limits: { messagesPerDay: 50 },
    });
    const patch = async (body: Record<string, unknown>) => {
      const res = await harness.call('PATCH', `/api/v1/admin/customers/${id}`, { body });
      expect(res.status).toBe(200);
      return (await json<{ customer: Versioned }>(res)).customer;
    };
    const before = await patch({ name: 'Acme' });
    await pause();
    const same = await patch({ name: 'Acme', plan: 'pro', status: 'active', limits: { messagesPerDay: 50 } });
    expect(same.updatedAt).toBe(before.updatedAt);
    await pause();
    const changed = await patch({ limits: { messagesPerDay: 60 } });
    expect(changed.updatedAt > before.updatedAt).toBe(true);
  });
});
