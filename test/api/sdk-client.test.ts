import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../api/app';
import { OpenClawClient, OpenClawError } from '../../examples/sdk-client';
import type { Services } from '../../lib/services';
import { createTestDatabase, type TestDatabase } from '../support/db';
import { createTestServices, TEST_ADMIN_KEY } from '../support/services';
import { CLAUDE_KEY, TELEGRAM_TOKEN } from './harness';

describe('OpenClawClient against a running server', () => {
  let database: TestDatabase;
  let services: Services;
  let server: ReturnType<typeof serve>;
  let baseUrl: string;

  beforeAll(async () => {
    database = await createTestDatabase('pglite');
    services = await createTestServices({ database: database.handle });
    server = serve({ fetch: createApp(services).fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await services.close();
    await database.destroy();
  });

  it('drives the whole customer and agent flow', async () => {
    const admin = new OpenClawClient({ baseUrl, apiKey: TEST_ADMIN_KEY });
    const { customer, apiKey } = await admin.createCustomer({ name: 'SDK Co', plan: 'pro' });
    expect((await admin.getCustomer(customer.id)).customer.name).toBe('SDK Co');
    expect((await admin.listCustomers({ plan: 'pro' })).customers.map((c) => c.id)).toContain(customer.id);
    expect((await admin.updateCustomer(customer.id, { maxAgents: 2 })).customer.maxAgents).toBe(2);

    const client = new OpenClawClient({ baseUrl, apiKey });
    const { agent } = await client.createAgent(
      { name: 'Typed', temperature: 0 },
      { idempotencyKey: 'typed-1' },
    );
    expect(agent.temperature).toBe(0);
    // The same call again (a retry after a lost answer) answers the same agent.
    const again = await client.createAgent({ name: 'Typed', temperature: 0 }, { idempotencyKey: 'typed-1' });
    expect(again.agent.id).toBe(agent.id);
    expect((await client.updateAgent(agent.id, { maxTokens: 2048 })).agent.maxTokens).toBe(2048);
    expect(
      (await client.setTelegramCredentials(agent.id, { botToken: TELEGRAM_TOKEN })).credential.last4,
    ).toBe(TELEGRAM_TOKEN.slice(-4));
    await client.setClaudeCredentials(agent.id, { apiKey: CLAUDE_KEY });
    const { credentials } = await client.getCredentials(agent.id);
    expect([credentials.telegram.configured, credentials.claude.configured]).toEqual([true, true]);
    await client.deleteClaudeCredentials(agent.id);
    await client.deleteTelegramCredentials(agent.id);
    expect((await client.listAgents()).agents).toHaveLength(1);
    expect((await client.listAuditLog()).entries.length).toBeGreaterThan(3);
    expect(await client.listPairingRequests(agent.id, { status: 'pending' })).toEqual({
      pairingRequests: [],
      nextCursor: null,
    });
    await expect(client.approvePairingRequest(agent.id, 'ABCD-EFGH')).rejects.toMatchObject({
      status: 404,
      code: 'pairing_request_not_found',
    });
    expect((await admin.listAdminAuditLog({ customerId: customer.id })).entries.length).toBeGreaterThan(3);

    const rotated = await admin.rotateCustomerKey(customer.id);
    await expect(client.listAgents()).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
    const fresh = new OpenClawClient({ baseUrl, apiKey: rotated.apiKey });
    await fresh.deleteAgent(agent.id);
    await admin.deleteCustomer(customer.id);
  });

  it('throws OpenClawError carrying the error body', async () => {
    const admin = new OpenClawClient({ baseUrl, apiKey: TEST_ADMIN_KEY });
    const { apiKey } = await admin.createCustomer({ name: 'Errors', plan: 'free' });
    const client = new OpenClawClient({ baseUrl, apiKey });
    await client.createAgent({ name: 'only one' });
    const error = await client.createAgent({ name: 'too many' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenClawError);
    expect(error).toMatchObject({
      status: 409,
      code: 'max_agents_reached',
      body: { error: { code: 'max_agents_reached', requestId: expect.any(String) } },
    });
  });
});
