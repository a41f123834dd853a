import { Ratelimit } from '@upstash/ratelimit';
import { Redis as UpstashRedis } from '@upstash/redis';
import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createIORedisRequester } from '../../lib/ratelimit/requester';

describe.skipIf(!inject('redisUrl'))('the TCP requester against the real Redis', () => {
  let tcp: IORedis;
  let redis: UpstashRedis;
  const prefix = `test:req:${Date.now()}:${Math.random().toString(36).slice(2)}`;

  beforeAll(() => {
    tcp = new IORedis(inject('redisUrl'));
    redis = new UpstashRedis(createIORedisRequester(tcp));
  });
  afterAll(async () => {
    const keys = await tcp.keys(`${prefix}*`);
    if (keys.length) await tcp.del(...keys);
    tcp.disconnect();
  });

  it('runs string commands with the REST client semantics', async () => {
    expect(await redis.set(`${prefix}:a`, 'hello')).toBe('OK');
    expect(await redis.get(`${prefix}:a`)).toBe('hello');
    expect(await redis.incr(`${prefix}:n`)).toBe(1);
    expect(await redis.incrby(`${prefix}:n`, 41)).toBe(42);
    expect(await redis.set(`${prefix}:j`, { nested: [1, 2] })).toBe('OK');
    expect(await redis.get(`${prefix}:j`)).toEqual({ nested: [1, 2] });
    expect(await redis.get(`${prefix}:missing`)).toBeNull();
    expect(await redis.pexpire(`${prefix}:a`, 60_000)).toBe(1);
    expect(await redis.pttl(`${prefix}:a`)).toBeGreaterThan(50_000);
  });

  it('runs pipelines and transactions, one result per command', async () => {
    const pipeline = redis.pipeline();
    pipeline.set(`${prefix}:p1`, 'x');
    pipeline.incr(`${prefix}:p2`);
    pipeline.get(`${prefix}:p1`);
    expect(await pipeline.exec()).toEqual(['OK', 1, 'x']);
    const tx = redis.multi();
    tx.incr(`${prefix}:p2`);
    tx.incr(`${prefix}:p2`);
    expect(await tx.exec()).toEqual([2, 3]);
  });

  it('reports a command error with its Redis text', async () => {
    await redis.set(`${prefix}:s`, 'text');
    await expect(redis.incr(`${prefix}:s`)).rejects.toThrow(/not an integer/);
  });

  it('runs EVAL and EVALSHA, and reports NOSCRIPT for an unknown script', async () => {
    const script = 'return redis.call("INCRBY", KEYS[1], ARGV[1])';
    expect(await redis.eval(script, [`${prefix}:e`], ['5'])).toBe(5);
    const sha = await redis.scriptLoad(script);
    expect(await redis.evalsha(sha, [`${prefix}:e`], ['2'])).toBe(7);
    await expect(redis.evalsha('0'.repeat(40), [`${prefix}:e`], ['1'])).rejects.toThrow(/NOSCRIPT/);
  });

  it("carries @upstash/ratelimit's own scripts, falling back from EVALSHA after SCRIPT FLUSH", async () => {
    const limiter = new Ratelimit({
      redis,
      limiter: Ratelimit.slidingWindow(3, '1 m'),
      prefix: `${prefix}:rl`,
      analytics: false,
      ephemeralCache: false,
    });
    const results = [];
    for (let index = 0; index < 4; index += 1) results.push((await limiter.limit('user')).success);
    expect(results).toEqual([true, true, true, false]);
    await tcp.script('FLUSH');
    const after = await limiter.limit('other-user');
    expect(after.success).toBe(true);
    expect(after.remaining).toBe(2);
  });
});
