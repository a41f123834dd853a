import { eq, sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { selectRows } from '../../lib/db/client';
import { customers } from '../../lib/db/schema';
import { signingSecretsOf } from '../../lib/webhooks/secrets';
import { databaseTargets } from '../support/db';
import { type ApiHarness, json, useApiHarness } from './harness';

interface AgentBody {
  agent: Record<string, unknown> & { id: string };
}
interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

/** A customer's POST to `path`, with an Idempotency-Key when one is given. */
function poster(harness: ApiHarness, path: string) {
  return (apiKey: string, body: unknown, key?: string) =>
    harness.call('POST', path, {
      key: apiKey,
      body,
      headers: key === undefined ? {} : { 'Idempotency-Key': key },
    });
}

/*
 * A create retried after a timeout or a lost answer must not create twice: with the same
 * Idempotency-Key, the same request is answered as the first one was.
 */
describe.each(databaseTargets())('Idempotency-Key on agent creation on %s', (target) => {
  const harness = useApiHarness(target);

  const create = poster(harness, '/api/v1/agents');

  async function agentCount(customerId: string): Promise<number> {
    const rows = await selectRows<{ n: number }>(
      harness.services.db,
      sql`select count(*)::int as n from agents where customer_id = ${customerId}`,
    );
    return rows[0]?.n ?? 0;
  }

  it('answers a retry with the first answer, and creates one agent', async () => {
    const { id, apiKey } = await harness.createCustomer({ plan: 'pro' });
    const first = await create(apiKey, { name: 'Support', maxTokens: 512 }, 'create-support-1');
    expect(first.status).toBe(201);
    expect(first.headers.get('Idempotent-Replayed')).toBeNull();
    const firstBody = await json<AgentBody>(first);

    const again = await create(apiKey, { name: 'Support', maxTokens: 512 }, 'create-support-1');
    expect(again.status).toBe(201);
    expect(again.headers.get('Idempotent-Replayed')).toBe('true');
    expect(again.headers.get('ETag')).toBe(first.headers.get('ETag'));
    // The same answer to the byte, its keys in their order.
    expect(await again.text()).toBe(JSON.stringify(firstBody));
    expect(await agentCount(id)).toBe(1);
  });

  it('replays even once the plan allows no more agents, since nothing new is created', async () => {
    const { id, apiKey } = await harness.createCustomer({ plan: 'free' });
    expect((await create(apiKey, { name: 'Only' }, 'only-one')).status).toBe(201);
    expect((await create(apiKey, { name: 'Only' }, 'only-one')).status).toBe(201);
    const other = await create(apiKey, { name: 'Only' }, 'another-key');
    expect(other.status).toBe(409);
    expect((await json<ErrorBody>(other)).error.code).toBe('max_agents_reached');
    expect(await agentCount(id)).toBe(1);
  });

  it('refuses the key with another body (422 naming the header), creating nothing', async () => {
    const { id, apiKey } = await harness.createCustomer({ plan: 'pro' });
    expect((await create(apiKey, { name: 'Support' }, 'k-1')).status).toBe(201);
    const res = await create(apiKey, { name: 'Sales' }, 'k-1');
    expect(res.status).toBe(422);
    const { error } = await json<ErrorBody>(res);
    expect(error.code).toBe('idempotency_key_reused');
    expect(error.message).toContain('Idempotency-Key');
    expect(error.details).toEqual({ field: 'Idempotency-Key' });
    expect(await agentCount(id)).toBe(1);
  });

  it('keeps each customer’s keys apart', async () => {
    const a = await harness.createCustomer({ plan: 'pro' });
    const b = await harness.createCustomer({ plan: 'pro' });
    const forA = await create(a.apiKey, { name: 'Same' }, 'shared-key');
    const forB = await create(b.apiKey, { name: 'Same' }, 'shared-key');
    expect(forA.status).toBe(201);
    expect(forB.status).toBe(201);
    expect(forB.headers.get('Idempotent-Replayed')).toBeNull();
    expect((await json<AgentBody>(forB)).agent.id).not.toBe((await json<AgentBody>(forA)).agent.id);
    expect(await agentCount(a.id)).toBe(1);
    expect(await agentCount(b.id)).toBe(1);
  });

  it('creates once when the same request comes several times at once', async () => {
    const { id, apiKey } = await harness.createCustomer({ plan: 'enterprise' });
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => create(apiKey, { name: 'Burst' }, 'burst-key')),
    );
    expect(answers.map((res) => res.status)).toEqual([201, 201, 201, 201, 201]);
    const ids = await Promise.all(answers.map(async (res) => (await json<AgentBody>(res)).agent.id));
    expect(new Set(ids).size).toBe(1);
    expect(answers.filter((res) => res.headers.get('Idempotent-Replayed') === 'true')).toHaveLength(4);
    expect(await agentCount(id)).toBe(1);
  });

  it('forgets a key after 24 hours: the request creates again, and the key then answers the new agent', async () => {
    const { id, apiKey } = await harness.createCustomer({ plan: 'pro' });
    const first = await json<AgentBody>(await create(apiKey, { name: 'Daily' }, 'daily'));
    await harness.services.db.execute(
      sql`update idempotency_keys set created_at = now() - interval '24 hours 1 second' where customer_id = ${id}`,
    );
    const later = await create(apiKey, { name: 'Daily' }, 'daily');
    expect(later.status).toBe(201);
    expect(later.headers.get('Idempotent-Replayed')).toBeNull();
    const second = await json<AgentBody>(later);
    expect(second.agent.id).not.toBe(first.agent.id);
    const replay = await json<AgentBody>(await create(apiKey, { name: 'Daily' }, 'daily'));
    expect(replay.agent.id).toBe(second.agent.id);
    expect(await agentCount(id)).toBe(2);
    const kept = await selectRows<{ n: number }>(
      harness.services.db,
      sql`select count(*)::int as n from idempotency_keys where customer_id = ${id}`,
    );
    expect(kept[0]?.n).toBe(1);
  });

  it('does not remember a refused create: the retry is decided afresh', async () => {
    const { id, apiKey } = await harness.createCustomer({ plan: 'pro' });
    const refused = await create(apiKey, { name: 'X', model: 'no-such-model' }, 'retry-me');
    expect(refused.status).toBe(400);
    const fixed = await create(apiKey, { name: 'X' }, 'retry-me-2');
    expect(fixed.status).toBe(201);
    const retried = await create(apiKey, { name: 'X', model: 'no-such-model' }, 'retry-me');
    expect(retried.status).toBe(400);
    expect(await agentCount(id)).toBe(1);
  });

  it.each([
    ['empty', ''],
    ['with a space', 'two words'],
    ['non-ASCII', 'clé'],
    ['longer than 255 characters', 'k'.repeat(256)],
  ])('refuses a key %s with a 400 naming the header', async (_, key) => {
    const { id, apiKey } = await harness.createCustomer({ plan: 'pro' });
    const res = await create(apiKey, { name: 'Support' }, key);
    expect(res.status).toBe(400);
    const { error } = await json<ErrorBody>(res);
    expect(error.code).toBe('validation_error');
    expect(error.message.toLowerCase()).toContain('idempotency-key');
    expect(await agentCount(id)).toBe(0);
  });

  it('without a key, two requests create two agents as before', async () => {
    const { id, apiKey } = await harness.createCustomer({ plan: 'pro' });
    expect((await create(apiKey, { name: 'A' })).status).toBe(201);
    expect((await create(apiKey, { name: 'A' })).status).toBe(201);
    expect(await agentCount(id)).toBe(2);
  });

  it('goes with its customer', async () => {
    const { id, apiKey } = await harness.createCustomer({ plan: 'pro' });
    expect((await create(apiKey, { name: 'A' }, 'gone-with-customer')).status).toBe(201);
    const deleted = await harness.call('DELETE', `/api/v1/admin/customers/${id}`, {});
    expect(deleted.status).toBe(204);
    const rows = await selectRows<{ n: number }>(
      harness.services.db,
      sql`select count(*)::int as n from idempotency_keys where customer_id = ${id}`,
    );
    expect(rows[0]?.n).toBe(0);
  });
});

/*
 * A webhook secret rotation retried after a lost answer must not rotate twice: the second rotation
 * would end the grace of the secret the receiver still verifies with.
 */
describe.each(databaseTargets())('Idempotency-Key on webhook secret rotation on %s', (target) => {
  const harness = useApiHarness(target);

  const rotate = poster(harness, '/api/v1/webhook/rotate-secret');

  async function customerWithSecret() {
    const res = await harness.call('POST', '/api/v1/admin/customers', { body: { name: 'Hooks' } });
    const body = await json<{ customer: { id: string }; apiKey: string; webhookSecret: string }>(res);
    return { id: body.customer.id, apiKey: body.apiKey, original: body.webhookSecret };
  }

  async function signingSecrets(id: string) {
    const [row] = await harness.services.db.select().from(customers).where(eq(customers.id, id));
    if (!row) throw new Error('no customer');
    return signingSecretsOf(harness.services.keyring, row, new Date());
  }

  it('answers a retry with the secret the rotation made, and the original keeps its grace', async () => {
    const { id, apiKey, original } = await customerWithSecret();
    const first = await rotate(apiKey, { gracePeriodHours: 2 }, 'rotate-1');
    expect(first.status).toBe(200);
    expect(first.headers.get('Idempotent-Replayed')).toBeNull();
    const { secret } = await json<{ secret: string }>(first);

    const again = await rotate(apiKey, { gracePeriodHours: 2 }, 'rotate-1');
    expect(again.status).toBe(200);
    expect(again.headers.get('Idempotent-Replayed')).toBe('true');
    expect((await json<{ secret: string }>(again)).secret).toBe(secret);
    expect(await signingSecrets(id)).toMatchObject({ current: secret, previous: original });
  });

  it('refuses the key with another body, and a key whose secret was rotated again since', async () => {
    const { id, apiKey } = await customerWithSecret();
    const { secret } = await json<{ secret: string }>(
      await rotate(apiKey, { gracePeriodHours: 2 }, 'rotate-a'),
    );
    const otherBody = await rotate(apiKey, { gracePeriodHours: 3 }, 'rotate-a');
    expect(otherBody.status).toBe(422);
    expect((await json<ErrorBody>(otherBody)).error.code).toBe('idempotency_key_reused');

    const next = await json<{ secret: string }>(await rotate(apiKey, { gracePeriodHours: 2 }, 'rotate-b'));
    expect(next.secret).not.toBe(secret);
    const stale = await rotate(apiKey, { gracePeriodHours: 2 }, 'rotate-a');
    expect(stale.status).toBe(409);
    const { error } = await json<ErrorBody>(stale);
    expect(error.code).toBe('conflict');
    expect(error.details).toEqual({ field: 'Idempotency-Key' });
    // Neither refusal rotated anything.
    expect(await signingSecrets(id)).toMatchObject({ current: next.secret, previous: secret });
  });

  it('keeps no secret with the key, only its hash', async () => {
    const { id, apiKey } = await customerWithSecret();
    const { secret } = await json<{ secret: string }>(await rotate(apiKey, {}, 'rotate-hash'));
    const rows = await selectRows<{ response: unknown }>(
      harness.services.db,
      sql`select response from idempotency_keys where customer_id = ${id}`,
    );
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows[0]?.response)).not.toContain(secret);
  });

  it('without a key, each request rotates', async () => {
    const { apiKey } = await customerWithSecret();
    const a = await json<{ secret: string }>(await rotate(apiKey, {}));
    const b = await json<{ secret: string }>(await rotate(apiKey, {}));
    expect(a.secret).not.toBe(b.secret);
  });
});
