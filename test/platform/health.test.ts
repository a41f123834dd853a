import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../api/app';
import type { HealthReport } from '../../lib/health';
import { createRedis } from '../../lib/redis';
import type { Services } from '../../lib/services';
import { VERSION } from '../../lib/version';
import { createTestDatabase, databaseTargets, type TestDatabase } from '../support/db';
import { captureLogger, createTestServices } from '../support/services';

describe.each(databaseTargets())('GET /health on %s', (target) => {
  let database: TestDatabase;
  let services: Services;

  beforeAll(async () => {
    database = await createTestDatabase(target);
    services = await createTestServices({ database: database.handle });
  });
  afterAll(async () => {
    await services.close();
    await database.destroy();
  });

  it('answers 200 naming each part and its mode', async () => {
    const res = await createApp(services).request('/health');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(await res.json()).toEqual({
      status: 'ok',
      db: { driver: target === 'pglite' ? 'pglite' : 'pg', ok: true },
      redis: { mode: 'memory', ok: true, rateLimits: 'enforced' },
      jobs: { engine: 'embedded', ok: true },
      version: VERSION,
    });
  });

  it('answers 503 with the jobs engine marked when it reports a problem', async () => {
    const app = createApp(services, {
      jobsProbe: async () => ({ ok: false, error: 'executor loop stopped' }),
    });
    const res = await app.request('/health');
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({
      status: 'degraded',
      db: { ok: true },
      jobs: { engine: 'embedded', ok: false, error: 'executor loop stopped' },
    });
  });

  it('answers 503, not 500 or never, when the jobs probe throws or does not answer', async () => {
    const refused = createApp(services, {
      jobsProbe: async () => {
        throw Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:5432'), { code: 'ECONNREFUSED' });
      },
    });
    const res = await refused.request('/health');
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({
      jobs: { engine: 'embedded', ok: false, error: 'failed (ECONNREFUSED)' },
    });
    const silent = createApp(services, { jobsProbe: () => new Promise<never>(() => {}) });
    const slow = await silent.request('/health');
    expect(slow.status).toBe(503);
    expect(await slow.json()).toMatchObject({ jobs: { ok: false, error: 'no answer within 2000 ms' } });
  });

  it('answers 503 with redis marked when Redis does not answer', async () => {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    const redis = createRedis({ redis: { mode: 'tcp', url: 'redis://127.0.0.1:1' } });
    const res = await createApp({ ...services, redis }).request('/health');
    await redis.close();
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({
      status: 'degraded',
      db: { ok: true },
      redis: { mode: 'tcp', ok: false },
    });
  });

  it.skipIf(!inject('redisUrl'))('reports the real Redis over TCP as up', async () => {
    const redis = createRedis({ redis: { mode: 'tcp', url: inject('redisUrl') } });
    const res = await createApp({ ...services, redis }).request('/health');
    await redis.close();
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ redis: { mode: 'tcp', ok: true } });
  });

  it("tells the public a part failed and why in a word, and keeps the driver's message for the logs", async () => {
    const { logger, lines } = captureLogger('warn');
    const redis = createRedis({ redis: { mode: 'tcp', url: 'redis://127.0.0.1:1' } });
    const res = await createApp({ ...services, logger, redis }).request('/health');
    await redis.close();
    const text = await res.text();
    expect(text).not.toContain('127.0.0.1');
    const body = JSON.parse(text) as HealthReport;
    expect(body.redis.error).toMatch(
      /^(failed \([A-Z0-9_]+\)|failed: see the logs|no answer within \d+ ms)$/,
    );
    const logged = lines.find((line) => line.msg === 'health check failed');
    expect(logged).toMatchObject({ part: 'redis', err: { message: expect.any(String) } });
    expect((logged?.err as { message?: string } | undefined)?.message).not.toBe(body.redis.error);
  });

  it('answers 503 with db marked when the database is gone', async () => {
    const broken = await createTestDatabase(target);
    const brokenServices = await createTestServices({ database: broken.handle });
    await broken.handle.close();
    const res = await createApp(brokenServices).request('/health');
    await broken.destroy();
    expect(res.status).toBe(503);
    const body = (await res.json()) as HealthReport;
    expect(body).toMatchObject({ status: 'degraded', db: { ok: false }, redis: { ok: true } });
    expect(body.db.error).toMatch(/^(failed \([A-Z0-9_]+\)|failed: see the logs|no answer within \d+ ms)$/);
  });
});
