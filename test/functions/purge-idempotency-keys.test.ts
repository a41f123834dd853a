import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../api/app';
import { purgeIdempotencyKeysFunction } from '../../functions/purge-idempotency-keys';
import { selectRows } from '../../lib/db/client';
import { apiRequest } from '../support/api-request';
import { databaseTargets } from '../support/db';
import { createExecutorHarness, type ExecutorHarness } from '../support/executor';
import { TEST_ADMIN_KEY } from '../support/services';

describe.each(databaseTargets())('purge-idempotency-keys on %s', (target) => {
  let harness: ExecutorHarness;
  let app: App;

  beforeAll(async () => {
    harness = await createExecutorHarness({
      target,
      functions: (inngest, services) => [purgeIdempotencyKeysFunction({ inngest, services })],
    });
    app = createApp(harness.services);
  });
  afterAll(async () => {
    await harness?.close();
  });

  const keyedPost = async (path: string, apiKey: string, body: unknown, key: string) => {
    const res = await apiRequest(app, 'POST', path, {
      key: apiKey,
      body,
      headers: { 'Idempotency-Key': key },
    });
    expect(res.status).toBe(201);
    return res.json() as Promise<{ apiKey: string; customer: { id: string } }>;
  };
  const keys = async () => {
    const rows = await selectRows<{ key: string }>(
      harness.services.db,
      sql`select key from idempotency_keys union all select key from admin_idempotency_keys order by key`,
    );
    return rows.map((row) => row.key);
  };

  it('deletes the uses past their 24 hours, customers’ and the operator’s, on its hourly tick', async () => {
    const old = await keyedPost(
      '/api/v1/admin/customers',
      TEST_ADMIN_KEY,
      { name: 'Old', plan: 'pro' },
      'old-customer',
    );
    await keyedPost('/api/v1/admin/customers', TEST_ADMIN_KEY, { name: 'New' }, 'new-customer');
    await keyedPost('/api/v1/agents', old.apiKey, { name: 'Old agent' }, 'old-agent');
    await keyedPost('/api/v1/agents', old.apiKey, { name: 'New agent' }, 'new-agent');
    for (const table of ['idempotency_keys', 'admin_idempotency_keys']) {
      await harness.services.db.execute(
        sql`update ${sql.identifier(table)} set created_at = now() - interval '24 hours 1 second'
            where key like 'old-%'`,
      );
    }
    expect(await keys()).toEqual(['new-agent', 'new-customer', 'old-agent', 'old-customer']);
    await harness.advance(60 * 60 * 1000);
    await harness.settle();
    expect(await keys()).toEqual(['new-agent', 'new-customer']);
  });
});
