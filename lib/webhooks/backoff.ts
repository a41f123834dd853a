/**
 * When to retry a failed webhook delivery: exponential backoff over about a day.
 *
 * | after attempt | waits | total since first attempt (before jitter) |
 * | --- | --- | --- |
 * | 1 | 30 s | 0:00:30 |
 * | 2 | 2 min | 0:02:30 |
 * | 3 | 10 min | 0:12:30 |
 * | 4 | 30 min | 0:42:30 |
 * | 5 | 1 h | 1:42:30 |
 * | 6 | 3 h | 4:42:30 |
 * | 7 | 6 h | 10:42:30 |
 * | 8 | 12 h | 22:42:30 |
 *
 * Attempt 9 is the last (`WEBHOOK_MAX_ATTEMPTS`). Each wait is spread by ±20 % jitter so that
 * deliveries that failed together (a receiver outage) do not all come back at the same second.
 * The Inngest delivery function throws `RetryAfterError` with `webhookRetryDelayMs(...)`.
 */

export const BACKOFF_DELAYS_MS: readonly number[] = [
  30_000,
  2 * 60_000,
  10 * 60_000,
  30 * 60_000,
  60 * 60_000,
  3 * 60 * 60_000,
  6 * 60 * 60_000,
  12 * 60 * 60_000,
];

/** Attempts in all, the first included. */
export const WEBHOOK_MAX_ATTEMPTS = BACKOFF_DELAYS_MS.length + 1;

/** The longest a receiver's `Retry-After` may postpone the next attempt. */
export const MAX_RETRY_AFTER_MS = 12 * 60 * 60_000;

const JITTER = 0.2;

/**
 * The wait after failed attempt `attempt` (1-based: the first attempt is 1; Inngest's
 * `ctx.attempt` is 0-based, so pass `attempt + 1`) before the next, with jitter; `undefined`
 * when `attempt` was the last. `random` returns [0, 1) (injectable for tests).
 */
export function backoffSchedule(attempt: number, random: () => number = Math.random): number | undefined {
  if (!Number.isInteger(attempt) || attempt < 1) throw new RangeError('attempt must be an integer >= 1');
  const base = BACKOFF_DELAYS_MS[attempt - 1];
  if (base === undefined) return undefined;
  return Math.round(base * (1 - JITTER + 2 * JITTER * random()));
}

/**
 * The wait before the next attempt, honouring a receiver's `Retry-After` (capped at
 * `MAX_RETRY_AFTER_MS`) when it asks for longer than the schedule; `undefined` = give up.
 */
export function webhookRetryDelayMs(
  attempt: number,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number | undefined {
  const scheduled = backoffSchedule(attempt, random);
  if (scheduled === undefined) return undefined;
  if (retryAfterMs === undefined || !Number.isFinite(retryAfterMs)) return scheduled;
  return Math.max(scheduled, Math.min(Math.max(retryAfterMs, 0), MAX_RETRY_AFTER_MS));
}
