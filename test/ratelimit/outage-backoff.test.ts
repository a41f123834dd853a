import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createRateLimiter } from '../../lib/ratelimit/limiter';
import { createRedis, type RedisHandle } from '../../lib/redis';
import { type FreezableProxy, freezableProxy } from '../support/freezable-proxy';
import { captureLogger } from '../support/services';

/*
 * Through a Redis outage every limited request and message would wait out the limiter's timeout
 * first. After one failure, the limiter fails open without asking Redis for a while.
 */
describe.skipIf(!inject('redisUrl'))('the rate limiter after Redis failed', () => {
  let proxy: FreezableProxy | undefined;
  let redis: RedisHandle | undefined;
  afterEach(async () => {
    proxy?.thaw();
    await redis?.close();
    await proxy?.close();
  });

  it('fails open at once for the back-off, then asks Redis again', async () => {
    const target = new URL(inject('redisUrl'));
    const silent = await freezableProxy({ host: target.hostname, port: Number(target.port || 6379) });
    proxy = silent;
    redis = createRedis({ redis: { mode: 'tcp', url: `redis://127.0.0.1:${silent.port}` } });
    let clock = Date.now();
    const limiter = createRateLimiter({
      redis,
      kind: 'api',
      logger: captureLogger('error').logger,
      prefix: `test:${randomUUID()}:api`,
      timeoutMs: 200,
      failureBackoffMs: 5_000,
      now: () => clock,
    });
    expect(await limiter.limit('customer:c', 10)).toMatchObject({ success: true, failedOpen: false });

    silent.freeze();
    expect(await limiter.limit('customer:c', 10)).toMatchObject({ success: true, failedOpen: true });
    const asked = silent.heldFromClients;
    expect(asked).toBeGreaterThan(0);
    for (let index = 0; index < 3; index += 1) {
      expect(await limiter.limit('customer:c', 10)).toMatchObject({ failedOpen: true });
      expect(await limiter.usage('customer:c', 10)).toMatchObject({ failedOpen: true });
    }
    // Not one byte more was sent while backing off.
    expect(silent.heldFromClients).toBe(asked);

    silent.thaw();
    clock += 5_000;
    expect(await limiter.limit('customer:c', 10)).toMatchObject({ success: true, failedOpen: false });
  });
});
