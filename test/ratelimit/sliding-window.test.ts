import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { createLogger } from '../../lib/logger';
import { createRateLimiter, upstashClientFor } from '../../lib/ratelimit/limiter';
import { slidingWindowFreeAt } from '../../lib/ratelimit/sliding-window';
import { createRedis } from '../../lib/redis';

const HOUR = 3_600_000;
const stores = inject('redisUrl') ? (['memory', 'redis'] as const) : (['memory'] as const);

describe('when a refused sliding-window request may pass', () => {
  it('frees part way into the window when the previous window weighs it down', () => {
    // 20 last hour, none this hour, limit 10: the weighted 20 drops under 10 half way through.
    expect(slidingWindowFreeAt({ previous: 20, current: 0, limit: 10, windowStart: 0, windowMs: HOUR })).toBe(
      HOUR / 2 + 1,
    );
    expect(
      slidingWindowFreeAt({ previous: 100, current: 9, limit: 10, windowStart: HOUR, windowMs: HOUR }),
    ).toBe(HOUR + 0.99 * HOUR + 1);
  });

  it("frees only part way into the next window when this window's count is at or over the limit", () => {
    // At the limit: just after the window's end. Over it (a lowered limit): later still.
    expect(slidingWindowFreeAt({ previous: 0, current: 10, limit: 10, windowStart: 0, windowMs: HOUR })).toBe(
      HOUR + 1,
    );
    expect(
      slidingWindowFreeAt({ previous: 50, current: 12, limit: 10, windowStart: 0, windowMs: HOUR }),
    ).toBe(HOUR + HOUR / 6 + 1);
    expect(slidingWindowFreeAt({ previous: 0, current: 5, limit: 0, windowStart: 0, windowMs: HOUR })).toBe(
      2 * HOUR,
    );
  });
});

describe.each(stores)("the API limiter's reset on the %s store", (store) => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A limiter whose two hourly windows are seeded, at a fixed clock (only Date is faked: Redis is real). */
  async function seeded(counts: { previous: number; current: number }, at: Date) {
    const redis =
      store === 'redis'
        ? createRedis({ redis: { mode: 'tcp', url: inject('redisUrl') } })
        : createRedis({ redis: { mode: 'memory' } });
    const prefix = `test:${randomUUID()}:api`;
    const limiter = createRateLimiter({
      redis,
      kind: 'api',
      logger: createLogger({ logLevel: 'error', env: 'test' }),
      prefix,
    });
    const window = Math.floor(at.getTime() / HOUR);
    const client = upstashClientFor(redis);
    await client.set(`${prefix}:customer:c:${window - 1}`, counts.previous);
    await client.set(`${prefix}:customer:c:${window}`, counts.current);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(at);
    return {
      limit: () => limiter.limit('customer:c', 10),
      at: (time: number) => vi.setSystemTime(time),
      close: () => redis.close(),
    };
  }

  it.each([
    {
      name: 'a request refused by the last hour is told when the weight lets one through, before the hour ends',
      counts: { previous: 20, current: 0 },
      at: '2031-01-01T10:15:00Z',
      freeAt: '2031-01-01T10:30:00.001Z',
      refusedAt: [],
    },
    {
      name: "a request over this hour's count is told a time in the next hour (the hour's end still refuses)",
      counts: { previous: 0, current: 12 },
      at: '2031-01-01T11:15:00Z',
      freeAt: '2031-01-01T12:10:00.001Z',
      refusedAt: ['2031-01-01T12:00:00.000Z'],
    },
  ])('$name', async ({ counts, at, freeAt, refusedAt }) => {
    const limiter = await seeded(counts, new Date(at));
    try {
      const refused = await limiter.limit();
      expect(refused.success).toBe(false);
      expect(new Date(refused.reset).toISOString()).toBe(freeAt);
      for (const time of [...refusedAt.map((iso) => Date.parse(iso)), refused.reset - 1]) {
        limiter.at(time);
        expect((await limiter.limit()).success).toBe(false);
      }
      limiter.at(refused.reset);
      expect((await limiter.limit()).success).toBe(true);
    } finally {
      await limiter.close();
    }
  });
});
