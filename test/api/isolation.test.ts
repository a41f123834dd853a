import { describe, expect, it } from 'vitest';
import type { ErrorBody } from '../../lib/errors';
import { databaseTargets } from '../support/db';
import { CLAUDE_KEY, json, TELEGRAM_TOKEN, useApiHarness } from './harness';

/** Every customer route that names an agent, with a body it would accept. */
const AGENT_ROUTES: [string, string, unknown][] = [
  ['GET', '', undefined],
  ['PATCH', '', { name: 'stolen' }],
  ['DELETE', '', undefined],
  ['GET', '/credentials', undefined],
  ['PUT', '/credentials/telegram', { botToken: TELEGRAM_TOKEN }],
  ['DELETE', '/credentials/telegram', undefined],
  ['PUT', '/credentials/claude', { apiKey: CLAUDE_KEY }],
  ['DELETE', '/credentials/claude', undefined],
  ['POST', '/credentials/validate', undefined],
  ['POST', '/start', undefined],
  ['POST', '/stop', undefined],
  ['GET', '/status', undefined],
  ['GET', '/pairing-requests', undefined],
  ['POST', '/pairing-requests/ABCDEFGH/approve', undefined],
  ['POST', '/pairing-requests/ABCDEFGH/reject', undefined],
];

describe.each(databaseTargets())('tenant isolation on %s', (target) => {
  const harness = useApiHarness(target);

  it.each(AGENT_ROUTES)(
    "%s /agents/:id%s with another customer's agent is a 404 like a missing one",
    async (method, suffix, body) => {
      const alice = await harness.createCustomer({ name: 'Alice', plan: 'pro' });
      const mallory = await harness.createCustomer({ name: 'Mallory', plan: 'pro' });
      const aliceAgent = await harness.createAgent(alice.apiKey, { name: 'alice-agent' });
      await harness.call('PUT', `/api/v1/agents/${aliceAgent}/credentials/claude`, {
        key: alice.apiKey,
        body: { apiKey: CLAUDE_KEY },
      });

      const foreign = await harness.call(method, `/api/v1/agents/${aliceAgent}${suffix}`, {
        key: mallory.apiKey,
        body,
      });
      const missing = await harness.call(
        method,
        `/api/v1/agents/00000000-0000-4000-8000-000000000000${suffix}`,
        {
          key: mallory.apiKey,
          body,
        },
      );
      expect(foreign.status).toBe(404);
      expect(missing.status).toBe(404);
      const foreignBody = await json<ErrorBody>(foreign);
      const missingBody = await json<ErrorBody>(missing);
      expect(foreignBody.error.code).toBe('agent_not_found');
      expect(foreignBody.error.code).toBe(missingBody.error.code);
      expect(foreignBody.error.message.replace(aliceAgent, 'ID')).toBe(
        missingBody.error.message.replace('00000000-0000-4000-8000-000000000000', 'ID'),
      );

      // Nothing of Alice's changed.
      const own = await json<{ agent: { name: string } }>(
        await harness.call('GET', `/api/v1/agents/${aliceAgent}`, { key: alice.apiKey }),
      );
      expect(own.agent.name).toBe('alice-agent');
      const creds = await json<{
        credentials: { claude: { configured: boolean }; telegram: { configured: boolean } };
      }>(await harness.call('GET', `/api/v1/agents/${aliceAgent}/credentials`, { key: alice.apiKey }));
      expect(creds.credentials.claude.configured).toBe(true);
      expect(creds.credentials.telegram.configured).toBe(false);
    },
  );

  it("lists and the audit log show only the customer's own", async () => {
    const alice = await harness.createCustomer({ name: 'Alice', plan: 'pro' });
    const bob = await harness.createCustomer({ name: 'Bob', plan: 'pro' });
    const aliceAgent = await harness.createAgent(alice.apiKey);
    const bobAgent = await harness.createAgent(bob.apiKey);
    const aliceList = await json<{ agents: { id: string }[] }>(
      await harness.call('GET', '/api/v1/agents?limit=100', { key: alice.apiKey }),
    );
    expect(aliceList.agents.map((agent) => agent.id)).toEqual([aliceAgent]);

    const log = await json<{ entries: { customerId: string; target: { id: string } }[] }>(
      await harness.call('GET', '/api/v1/audit-log?limit=100', { key: alice.apiKey }),
    );
    expect(log.entries.length).toBeGreaterThan(0);
    expect(log.entries.every((entry) => entry.customerId === alice.id)).toBe(true);
    expect(JSON.stringify(log)).not.toContain(bobAgent);
    expect(JSON.stringify(log)).not.toContain(bob.id);
  });

  it('a customer cannot reach the admin routes or filter the audit log by another customer', async () => {
    const alice = await harness.createCustomer();
    const bob = await harness.createCustomer();
    expect(
      (await harness.call('GET', `/api/v1/admin/customers/${bob.id}`, { key: alice.apiKey })).status,
    ).toBe(401);
    // customerId is no filter of the customer's own audit log: refused, as every unknown parameter is.
    const res = await harness.call('GET', `/api/v1/audit-log?customerId=${bob.id}`, { key: alice.apiKey });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(JSON.parse(text).error).toMatchObject({
      code: 'unknown_field',
      details: { fields: ['customerId'] },
    });
    const own = await json<{ entries: { customerId: string }[] }>(
      await harness.call('GET', '/api/v1/audit-log', { key: alice.apiKey }),
    );
    expect(own.entries.every((entry) => entry.customerId === alice.id)).toBe(true);
  });
});
