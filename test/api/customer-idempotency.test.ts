import { sql } from 'drizzle-orm';
import { describe, expect, it, vi } from 'vitest';
import { findApiKeyOwner, markApiKeyUsed } from '../../lib/api-keys';
import { selectRows } from '../../lib/db/client';
import { IDEMPOTENCY_KEY_TTL_MS } from '../../lib/idempotency';
import { databaseTargets } from '../support/db';
import { json, useApiHarness } from './harness';

interface CreatedBody {
  customer: { id: string; name: string };
  apiKey: string;
  webhookSecret: string;
}
interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

/*
 * An operator's customer create retried after a lost answer must not create a second customer. The
 * first answer's API key is kept only as a hash, so the retry cannot repeat it: it gets the same
 * customer with a new key, as long as nobody has used the first one.
 */
describe.each(databaseTargets())('Idempotency-Key on customer creation on %s', (target) => {
  const harness = useApiHarness(target);

  const create = (body: Record<string, unknown>, key?: string) =>
    harness.call('POST', '/api/v1/admin/customers', {
      body,
      headers: key === undefined ? {} : { 'Idempotency-Key': key },
    });
  const listAgents = (apiKey: string) => harness.call('GET', '/api/v1/agents', { key: apiKey });

  async function customersNamed(name: string): Promise<number> {
    const rows = await selectRows<{ n: number }>(
      harness.services.db,
      sql`select count(*)::int as n from customers where name = ${name}`,
    );
    return rows[0]?.n ?? 0;
  }

  async function expectConflict(res: Response, says: string): Promise<void> {
    expect(res.status).toBe(409);
    const { error } = await json<ErrorBody>(res);
    expect(error.code).toBe('conflict');
    expect(error.message).toContain(says);
    expect(error.details).toEqual({ field: 'Idempotency-Key' });
  }

  it('answers a retry with the same customer and secret, and a new key in place of the unused first', async () => {
    const first = await create({ name: 'Retry Co', plan: 'pro' }, 'retry-co');
    expect(first.status).toBe(201);
    expect(first.headers.get('Idempotent-Replayed')).toBeNull();
    const firstBody = await json<CreatedBody>(first);

    const again = await create({ name: 'Retry Co', plan: 'pro' }, 'retry-co');
    expect(again.status).toBe(201);
    expect(again.headers.get('Idempotent-Replayed')).toBe('true');
    expect(again.headers.get('ETag')).toBe(first.headers.get('ETag'));
    const againBody = await json<CreatedBody>(again);
    expect(againBody.customer).toEqual(firstBody.customer);
    expect(againBody.webhookSecret).toBe(firstBody.webhookSecret);
    expect(againBody.apiKey).not.toBe(firstBody.apiKey);

    expect((await listAgents(againBody.apiKey)).status).toBe(200);
    expect((await listAgents(firstBody.apiKey)).status).toBe(401);
    expect(await customersNamed('Retry Co')).toBe(1);
    const audit = await selectRows<{ action: string }>(
      harness.services.db,
      sql`select action from audit_log where target_id = ${firstBody.customer.id} order by created_at, id`,
    );
    expect(audit.map((row) => row.action)).toEqual(['customer.create', 'customer.create_replayed']);
  });

  it('refuses a retry once the key was used, which leaves that key working (409 naming the header)', async () => {
    const first = await json<CreatedBody>(await create({ name: 'Used Co' }, 'used-co'));
    expect((await listAgents(first.apiKey)).status).toBe(200);
    await expectConflict(await create({ name: 'Used Co' }, 'used-co'), 'has been used or replaced since');
    expect((await listAgents(first.apiKey)).status).toBe(200);
    expect(await customersNamed('Used Co')).toBe(1);
  });

  it('refuses a retry once the key was rotated, and once the customer was deleted', async () => {
    const rotated = await json<CreatedBody>(await create({ name: 'Rotated Co' }, 'rotated-co'));
    const rotation = await harness.call('POST', `/api/v1/admin/customers/${rotated.customer.id}/rotate-key`);
    expect(rotation.status).toBe(200);
    const { apiKey } = await json<{ apiKey: string }>(rotation);
    await expectConflict(await create({ name: 'Rotated Co' }, 'rotated-co'), 'rotate-key');
    expect((await listAgents(apiKey)).status).toBe(200);

    const deleted = await json<CreatedBody>(await create({ name: 'Deleted Co' }, 'deleted-co'));
    expect((await harness.call('DELETE', `/api/v1/admin/customers/${deleted.customer.id}`)).status).toBe(204);
    await expectConflict(await create({ name: 'Deleted Co' }, 'deleted-co'), 'deleted since');
    expect(await customersNamed('Deleted Co')).toBe(0);
  });

  it('refuses the key with another body (422 naming the header), creating nothing', async () => {
    expect((await create({ name: 'Body Co' }, 'body-co')).status).toBe(201);
    const res = await create({ name: 'Other Co' }, 'body-co');
    expect(res.status).toBe(422);
    const { error } = await json<ErrorBody>(res);
    expect(error.code).toBe('idempotency_key_reused');
    expect(error.details).toEqual({ field: 'Idempotency-Key' });
    expect(await customersNamed('Other Co')).toBe(0);
  });

  it('creates once when the same request comes several times at once; one answered key works', async () => {
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => create({ name: 'Burst Co' }, 'burst-co')),
    );
    expect(answers.map((res) => res.status)).toEqual([201, 201, 201, 201, 201]);
    const bodies = await Promise.all(answers.map((res) => json<CreatedBody>(res)));
    expect(new Set(bodies.map((body) => body.customer.id)).size).toBe(1);
    expect(answers.filter((res) => res.headers.get('Idempotent-Replayed') === 'true')).toHaveLength(4);
    expect(await customersNamed('Burst Co')).toBe(1);
    const working = [];
    for (const body of bodies) if ((await listAgents(body.apiKey)).status === 200) working.push(body);
    expect(working).toHaveLength(1);
  });

  it('forgets a key after 24 hours: the request creates again', async () => {
    const first = await json<CreatedBody>(await create({ name: 'Daily Co' }, 'daily-co'));
    await harness.services.db.execute(
      sql`update admin_idempotency_keys set created_at = now() - interval '24 hours 1 second' where key = 'daily-co'`,
    );
    const later = await create({ name: 'Daily Co' }, 'daily-co');
    expect(later.status).toBe(201);
    expect(later.headers.get('Idempotent-Replayed')).toBeNull();
    expect((await json<CreatedBody>(later)).customer.id).not.toBe(first.customer.id);
    expect((await listAgents(first.apiKey)).status).toBe(200);
    expect(await customersNamed('Daily Co')).toBe(2);
    const kept = await selectRows<{ n: number }>(
      harness.services.db,
      sql`select count(*)::int as n from admin_idempotency_keys where key = 'daily-co'`,
    );
    expect(kept[0]?.n).toBe(1);
  });

  it('does not remember a refused create, and without a key each request creates', async () => {
    const refused = await create({ name: 'Refused Co', plan: 'platinum' }, 'refused-co');
    expect(refused.status).toBe(400);
    const created = await create({ name: 'Refused Co' }, 'refused-co');
    expect(created.status).toBe(201);
    expect(created.headers.get('Idempotent-Replayed')).toBeNull();

    expect((await create({ name: 'Keyless Co' })).status).toBe(201);
    expect((await create({ name: 'Keyless Co' })).status).toBe(201);
    expect(await customersNamed('Keyless Co')).toBe(2);
  });

  it('records a key’s first use at once, and later uses at most once a minute', async () => {
    const { apiKey } = await json<CreatedBody>(await create({ name: 'Marked Co' }));
    const lastUsed = async () => {
      const rows = await selectRows<{ at: string | null }>(
        harness.services.db,
        sql`select k.last_used_at::text as at from api_keys k join customers c on c.id = k.customer_id
            where c.name = 'Marked Co'`,
      );
      return rows[0]?.at;
    };
    expect(await lastUsed()).toBeNull();
    expect((await listAgents(apiKey)).status).toBe(200);
    const first = await lastUsed();
    expect(first).not.toBeNull();
    expect((await listAgents(apiKey)).status).toBe(200);
    expect(await lastUsed()).toBe(first);
    await harness.services.db.execute(
      sql`update api_keys set last_used_at = last_used_at - interval '61 seconds' where last_used_at = ${first}::timestamptz`,
    );
    const aged = await lastUsed();
    expect((await listAgents(apiKey)).status).toBe(200);
    expect(await lastUsed()).not.toBe(aged);
  });

  it('a request whose key a retry revoked after its lookup is refused, not let through as its first use', async () => {
    const first = await json<CreatedBody>(await create({ name: 'Race Co' }, 'race-co'));
    // The request has looked the key up; the retry lands before it records the use.
    const owner = await findApiKeyOwner(harness.services.db, first.apiKey);
    expect(owner).toBeDefined();
    expect((await create({ name: 'Race Co' }, 'race-co')).status).toBe(201);
    expect(owner && (await markApiKeyUsed(harness.services.db, owner))).toBe(false);
  });

  it('requests marking a fresh key at once write its row once', async () => {
    const { apiKey } = await json<CreatedBody>(await create({ name: 'Herd Co' }));
    const owner = await findApiKeyOwner(harness.services.db, apiKey);
    if (!owner) throw new Error('no owner');
    const versions = async () => {
      // Every write makes a new row version: its xmin is the writing transaction.
      const rows = await selectRows<{ xmin: string }>(
        harness.services.db,
        sql`select xmin::text from api_keys where id = ${owner.keyId}`,
      );
      return rows[0]?.xmin;
    };
    const now = new Date();
    expect(
      await Promise.all(Array.from({ length: 10 }, () => markApiKeyUsed(harness.services.db, owner, now))),
    ).toEqual(Array.from({ length: 10 }, () => true));
    const afterFirst = await versions();
    expect(await markApiKeyUsed(harness.services.db, owner, now)).toBe(true);
    expect(await versions()).toBe(afterFirst);
  });

  it('a retry just as its key expires creates again, whatever the microseconds of the stored time', async () => {
    expect((await create({ name: 'Edge Co' }, 'edge-co')).status).toBe(201);
    const at = Date.UTC(2030, 0, 1);
    await harness.services.db.execute(
      sql`update admin_idempotency_keys set created_at = ${new Date(at).toISOString()}::timestamptz + interval '500 microseconds'
          where key = 'edge-co'`,
    );
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(at + IDEMPOTENCY_KEY_TTL_MS);
      const res = await create({ name: 'Edge Co' }, 'edge-co');
      expect(res.status).toBe(201);
      expect(res.headers.get('Idempotent-Replayed')).toBeNull();
    } finally {
      vi.useRealTimers();
    }
    expect(await customersNamed('Edge Co')).toBe(2);
  });

  it('refuses a malformed key as a 400 naming the header', async () => {
    const res = await create({ name: 'Bad Key Co' }, ' ');
    expect(res.status).toBe(400);
    expect(JSON.stringify(await json<ErrorBody>(res))).toContain('idempotency-key');
    expect(await customersNamed('Bad Key Co')).toBe(0);
  });
});
