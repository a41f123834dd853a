import { Ratelimit } from '@upstash/ratelimit';
import { Redis as UpstashRedis } from '@upstash/redis';
import type { Logger } from '../logger';
import type { RedisHandle } from '../redis';
import { withTimeout } from '../timeout';
import { createIORedisRequester } from './requester';
import { slidingWindowFreeAt } from './sliding-window';

export interface LimitResult {
  success: boolean;
  limit: number;
  remaining: number;
  /**
   * Unix time in milliseconds when the window frees up; refused, when the next use will pass (an API
   * request under the sliding window may pass before the window's end, or only after it).
   */
  reset: number;
  /** True when Redis did not answer and the limit was not enforced (fail open). */
  failedOpen: boolean;
}

/** What the rest of the code sees: not which store runs it. */
export interface RateLimiter {
  /** Counts one use of `identifier` against `limit` per window. */
  limit(identifier: string, limit: number): Promise<LimitResult>;
  /** The current use without counting one; `failedOpen` when Redis did not answer (the figures are not real). */
  usage(
    identifier: string,
    limit: number,
  ): Promise<{ used: number; remaining: number; reset: number; failedOpen: boolean }>;
}

export type LimitKind = 'api' | 'messages';

/**
 * API requests: sliding window of one hour. It weighs the previous window, so a client cannot
 * spend two hours' budget around a window boundary (a fixed window would allow that burst), at
 * two keys per identifier.
 * Messages: fixed window of one day. Windows start at 00:00 UTC (epoch-aligned), so "messages per
 * day" means a calendar day, which is what customers read on their plan and usage page.
 */
const ALGORITHMS: Record<LimitKind, (tokens: number) => ReturnType<typeof Ratelimit.slidingWindow>> = {
  api: (tokens) => Ratelimit.slidingWindow(tokens, '1 h'),
  messages: (tokens) => Ratelimit.fixedWindow(tokens, '1 d'),
};
/** The API's sliding window, '1 h' above, in milliseconds. */
const API_WINDOW_MS = 60 * 60_000;

/** The @upstash/redis client for whatever Redis runs: REST, TCP through ioredis, or in memory. */
export function upstashClientFor(redis: RedisHandle): UpstashRedis {
  if (redis.upstash) return redis.upstash;
  const client = redis.tcp ?? redis.memory;
  if (!client) throw new Error(`Redis handle in ${redis.mode} mode has no client`);
  return new UpstashRedis(createIORedisRequester(client));
}

export interface RateLimiterOptions {
  redis: RedisHandle;
  kind: LimitKind;
  logger: Logger;
  /** Key prefix; tests isolate runs with their own. */
  prefix?: string;
  /** How long to wait for Redis before failing open. */
  timeoutMs?: number;
  /** After Redis failed, how long limits fail open without asking it (each ask would wait `timeoutMs`). */
  failureBackoffMs?: number;
  now?: () => number;
}

/**
 * Both limits fail open when Redis is down or slow: a Redis outage must never lose a Telegram
 * message, and refusing every API call for the length of an outage would take the product down
 * with the cache. Each failure is logged (at most once a minute) and /health shows Redis down.
 * After a failure Redis is not asked for `failureBackoffMs`: otherwise, through an outage, every
 * request and every message would wait out the timeout first.
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const client = upstashClientFor(options.redis);
  const prefix = options.prefix ?? `oc:rl:${options.kind}`;
  const timeoutMs = options.timeoutMs ?? 500;
  const failureBackoffMs = options.failureBackoffMs ?? 5_000;
  const now = options.now ?? Date.now;
  let askAgainAt = 0;
  // One Ratelimit per distinct limit: an override changes the tokens, not the algorithm, nor the
  // counter (the key holds no limit), so a new plan or override applies to what was already counted.
  const byLimit = new Map<number, Ratelimit>();
  let lastWarning = 0;

  const limiterFor = (tokens: number) => {
    let limiter = byLimit.get(tokens);
    if (!limiter) {
      limiter = new Ratelimit({
        redis: client,
        limiter: ALGORITHMS[options.kind](tokens),
        prefix,
        // Our own timeout below decides fail-open; no analytics, no cache that outlives a change.
        timeout: 0,
        ephemeralCache: false,
        analytics: false,
      });
      byLimit.set(tokens, limiter);
    }
    return limiter;
  };

  const bounded = async <T>(work: () => Promise<T>): Promise<T> => {
    if (now() < askAgainAt) throw new Error(`Redis failed less than ${failureBackoffMs} ms ago`);
    try {
      return await withTimeout(work(), timeoutMs, `Redis did not answer within ${timeoutMs} ms`);
    } catch (error) {
      askAgainAt = now() + failureBackoffMs;
      throw error;
    }
  };

  const warn = (error: unknown) => {
    if (now() - lastWarning < 60_000) return;
    lastWarning = now();
    options.logger.warn(
      { err: error instanceof Error ? error.message : String(error), limit: options.kind },
      'rate limit store unavailable: failing open',
    );
  };

  /**
   * When a refused API request may pass: the sliding window's end (what @upstash/ratelimit reports
   * as `reset`) is too late when the previous hour's weight is what refuses it, and too early when
   * this hour's own count is at the limit. Read from the two windows' counts, under the library's
   * keys (`prefix:identifier:windowIndex`); the window's end when Redis does not say.
   */
  const apiFreeAt = async (identifier: string, tokens: number, windowEnd: number): Promise<number> => {
    const windowIndex = windowEnd / API_WINDOW_MS - 1;
    try {
      const [previous, current] = await bounded(() =>
        client.mget<(number | string | null)[]>(
          `${prefix}:${identifier}:${windowIndex - 1}`,
          `${prefix}:${identifier}:${windowIndex}`,
        ),
      );
      return slidingWindowFreeAt({
        previous: Number(previous ?? 0),
        current: Number(current ?? 0),
        limit: tokens,
        windowStart: windowEnd - API_WINDOW_MS,
        windowMs: API_WINDOW_MS,
      });
    } catch (error) {
      warn(error);
      return windowEnd;
    }
  };

  return {
    async limit(identifier, tokens) {
      try {
        const limiter = limiterFor(tokens);
        const result = await bounded(() => limiter.limit(identifier));
        // The ratelimit promise for analytics and multi-region sync; nothing pending here, but never leave it unhandled.
        result.pending.catch(() => {});
        if (!result.success && options.kind === 'messages') {
          // The fixed window counts a refused use too: handed back, the count is what was let
          // through, so a limit raised later in the day gives as many more as it says.
          // A refund Redis does not take only undercounts the limit raise: the refusal stands.
          await bounded(() => limiter.limit(identifier, { rate: -1 })).then(
            (refund) => refund.pending.catch(() => {}),
            (error: unknown) => warn(error),
          );
        }
        const reset =
          !result.success && options.kind === 'api'
            ? await apiFreeAt(identifier, tokens, result.reset)
            : result.reset;
        return {
          success: result.success,
          limit: tokens,
          remaining: result.remaining,
          reset,
          failedOpen: false,
        };
      } catch (error) {
        warn(error);
        return { success: true, limit: tokens, remaining: tokens, reset: now() + 60_000, failedOpen: true };
      }
    },
    async usage(identifier, tokens) {
      try {
        const { remaining, reset } = await bounded(() => limiterFor(tokens).getRemaining(identifier));
        return { used: Math.max(0, tokens - remaining), remaining, reset, failedOpen: false };
      } catch (error) {
        warn(error);
        return { used: 0, remaining: tokens, reset: now(), failedOpen: true };
      }
    },
  };
}
