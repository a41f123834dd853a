import type { Context } from 'hono';
import { AppError } from '../../lib/errors';
import type { LimitResult } from '../../lib/ratelimit/limiter';
import type { AppEnv } from '../env';

/**
 * Counts one API request against `identifier` and sets the rate-limit headers on the response
 * (Reset in Unix seconds), unless the limit is failing open. Over the limit: a 429 in the one error
 * shape, with Retry-After.
 * Called by the auth middleware, which knows who is asking and their plan.
 */
export async function enforceApiLimit(
  c: Context<AppEnv>,
  identifier: string,
  limit: number,
): Promise<LimitResult> {
  const result = await c.get('services').limits.api.limit(identifier, limit);
  const resetSeconds = Math.ceil(result.reset / 1000);
  const headers = {
    'X-RateLimit-Limit': String(result.limit),
    'X-RateLimit-Remaining': String(Math.max(0, result.remaining)),
    'X-RateLimit-Reset': String(resetSeconds),
  };
  if (!result.success) {
    const retryAfter = Math.max(1, Math.ceil((result.reset - Date.now()) / 1000));
    throw new AppError(
      'rate_limited',
      `Rate limit of ${result.limit} requests per hour exceeded; retry in ${retryAfter} s`,
      {
        details: { limit: result.limit, reset: resetSeconds },
        headers: { ...headers, 'Retry-After': String(retryAfter) },
      },
    );
  }
  // Failing open (Redis not answering), nothing was counted: figures would be made up, so none are sent.
  if (result.failedOpen) return result;
  for (const [name, value] of Object.entries(headers)) c.header(name, value);
  return result;
}
