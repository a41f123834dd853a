import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type App, createApp } from '../../api/app';
import { agents } from '../../lib/db/schema';
import { createRedis, type RedisHandle } from '../../lib/redis';
import type { Services } from '../../lib/services';
import { createTestDatabase, type TestDatabase } from '../support/db';
import { captureLogger, createTestServices, TEST_ADMIN_KEY } from '../support/services';

const stores = inject('redisUrl') ? (['memory', 'redis'] as const) : (['memory'] as const);

describe.each(stores)('API rate limits on the %s store', (store) => {
  let database: TestDatabase;
  let services: Services;
  let app: App;
  let redis: RedisHandle | undefined;

  beforeAll(async () => {
    database = await createTestDatabase('pglite');
    redis = store === 'redis' ? createRedis({ redis: { mode: 'tcp', url: inject('redisUrl') } }) : undefined;
    services = await createTestServices({
      database: database.handle,
      ...(redis ? { redis } : {}),
      env: { ADMIN_RATE_LIMIT_PER_HOUR: '7' },
    });
    app = createApp(services);
  });
  afterAll(async () => {
    await services.close();
    await database.destroy();
  });

  const call = (path: string, key: string, init: RequestInit = {}) =>
    app.request(path, {
      ...init,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...init.headers },
    });
  // Creating customers spends admin requests; the admin limit is lifted for setup via direct inserts.
  async function customer(body: Record<string, unknown>) {
    const { createCustomer } = await import('../../lib/customers');
    return createCustomer(
      services.db,
      { actor: { type: 'system' }, requestId: undefined, ip: undefined },
      services.keyring,
      {
        name: 'rl',
        plan: 'free',
        ...body,
      } as never,
    );
  }

  it('lets the free plan make exactly 100 requests an hour, then answers 429 with Retry-After', async () => {
    const { apiKey } = await customer({ plan: 'free' });
    for (let index = 1; index <= 100; index += 1) {
      const res = await call('/api/v1/agents', apiKey);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit')).toBe('100');
      expect(res.headers.get('x-ratelimit-remaining')).toBe(String(100 - index));
    }
    const refused = await call('/api/v1/agents', apiKey);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
    const reset = Number(refused.headers.get('x-ratelimit-reset'));
    expect(reset).toBeGreaterThan(Date.now() / 1000);
    expect(await refused.json()).toEqual({
      error: {
        code: 'rate_limited',
        message: expect.stringContaining('100 requests per hour'),
        details: { limit: 100, reset },
        requestId: expect.any(String),
      },
    });
  });

  it("respects an admin override of the plan's limit, per customer", async () => {
    const { apiKey } = await customer({ plan: 'enterprise', limits: { apiRequestsPerHour: 3 } });
    const other = await customer({ plan: 'enterprise' });
    const statuses = [];
    for (let index = 0; index < 4; index += 1) statuses.push((await call('/api/v1/agents', apiKey)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const res = await call('/api/v1/agents', other.apiKey);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ratelimit-limit')).toBe('10000');
  });

  it('a lower limit set during the hour counts the requests already made', async () => {
    const { customer: row, apiKey } = await customer({ plan: 'pro', limits: { apiRequestsPerHour: 5 } });
    for (let index = 0; index < 4; index += 1)
      expect((await call('/api/v1/agents', apiKey)).status).toBe(200);
    const { updateCustomer } = await import('../../lib/customers');
    await updateCustomer(
      services.db,
      { actor: { type: 'system' }, requestId: undefined, ip: undefined },
      row.id,
      { limits: { apiRequestsPerHour: 3 } } as never,
    );
    const refused = await call('/api/v1/agents', apiKey);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('x-ratelimit-limit')).toBe('3');
  });

  it('gives each plan its limit', async () => {
    for (const [plan, limit] of [
      ['free', '100'],
      ['pro', '1000'],
      ['enterprise', '10000'],
    ] as const) {
      const { apiKey } = await customer({ plan });
      expect((await call('/api/v1/agents', apiKey)).headers.get('x-ratelimit-limit')).toBe(limit);
    }
  });

  it('limits the admin routes on their own budget (ADMIN_RATE_LIMIT_PER_HOUR)', async () => {
    const statuses = [];
    for (let index = 0; index < 8; index += 1)
      statuses.push((await call('/api/v1/admin/customers', TEST_ADMIN_KEY)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 429]);
  });
});

describe('when Redis is down', () => {
  it('fails open: requests pass without rate-limit enforcement, a warning is logged, /health shows it', async () => {
    const database = await createTestDatabase('pglite');
    const capture = captureLogger('warn');
    const redis = createRedis({ redis: { mode: 'tcp', url: 'redis://127.0.0.1:1' } });
    const services = await createTestServices({ database: database.handle, redis, logger: capture.logger });
    try {
      const app = createApp(services);
      const { createCustomer } = await import('../../lib/customers');
      const { customer, apiKey } = await createCustomer(
        services.db,
        { actor: { type: 'system' }, requestId: undefined, ip: undefined },
        services.keyring,
        {
          name: 'down',
          plan: 'free',
          limits: { apiRequestsPerHour: 1 },
        } as never,
      );
      for (let index = 0; index < 3; index += 1) {
        const res = await app.request('/api/v1/agents', { headers: { authorization: `Bearer ${apiKey}` } });
        expect(res.status).toBe(200);
        // Nothing was counted: no made-up "full budget" figures.
        expect(res.headers.get('x-ratelimit-limit')).toBeNull();
        expect(res.headers.get('x-ratelimit-remaining')).toBeNull();
        expect(res.headers.get('x-ratelimit-reset')).toBeNull();
      }
      const warnings = capture.lines.filter(
        (line) => line.msg === 'rate limit store unavailable: failing open',
      );
      expect(warnings).toHaveLength(1);
      // The counts are unknown, not zero: /usage says the limits are failing open.
      const usage = await app.request('/api/v1/usage', { headers: { authorization: `Bearer ${apiKey}` } });
      expect(usage.status).toBe(200);
      expect(((await usage.json()) as { usage: unknown }).usage).toMatchObject({
        rateLimits: 'failing_open',
        apiRequests: { used: null, remaining: null },
        messages: { used: null, remaining: null },
      });
      const [agent] = await services.db
        .insert(agents)
        .values({ customerId: customer.id, name: 'bot', model: 'claude-sonnet-4-5' })
        .returning();
      const status = await app.request(`/api/v1/agents/${agent?.id}/status`, {
        headers: { authorization: `Bearer ${apiKey}` },
      });
      expect(status.status).toBe(200);
      expect(((await status.json()) as { status: { quota: unknown } }).status.quota).toMatchObject({
        remaining: null,
      });
      const health = await app.request('/health');
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({
        redis: { mode: 'tcp', ok: false, rateLimits: 'failing_open' },
      });
    } finally {
      await services.close();
      await database.destroy();
    }
  });
});
