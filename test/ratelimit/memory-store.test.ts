import { describe, expect, it } from 'vitest';
import { createRateLimiter } from '../../lib/ratelimit/limiter';
import { createRedis } from '../../lib/redis';
import { captureLogger } from '../support/services';

describe('the in-memory rate-limit store', () => {
  it('counts an identifier across the handles of one process, as clients of one Redis do', async () => {
    const prefix = `test:mem:${Math.random().toString(36).slice(2)}`;
    const first = createRedis({ redis: { mode: 'memory' } });
    const second = createRedis({ redis: { mode: 'memory' } });
    const { logger } = captureLogger();
    const a = createRateLimiter({ redis: first, kind: 'messages', logger, prefix });
    const b = createRateLimiter({ redis: second, kind: 'messages', logger, prefix });
    expect((await a.limit('customer', 2)).success).toBe(true);
    expect((await b.limit('customer', 2)).success).toBe(true);
    const third = await a.limit('customer', 2);
    expect(third).toMatchObject({ success: false, remaining: 0, failedOpen: false });
    await Promise.all([first.close(), second.close()]);
  });

  it('lets go of its client on close: many handles opened and closed in one process leave no listener behind', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      for (let index = 0; index < 25; index += 1) {
        const redis = createRedis({ redis: { mode: 'memory' } });
        const limiter = createRateLimiter({ redis, kind: 'api', logger: captureLogger().logger });
        await limiter.limit(`user-${index}`, 10);
        await redis.close();
      }
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning')).toEqual([]);
  });
});
