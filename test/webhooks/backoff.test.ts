import { describe, expect, it } from 'vitest';
import {
  BACKOFF_DELAYS_MS,
  backoffSchedule,
  MAX_RETRY_AFTER_MS,
  WEBHOOK_MAX_ATTEMPTS,
  webhookRetryDelayMs,
} from '../../lib/webhooks/backoff';

describe('backoffSchedule', () => {
  it('grows exponentially and spans about a day', () => {
    const waits = BACKOFF_DELAYS_MS.map((_, index) => backoffSchedule(index + 1, () => 0.5)!);
    expect(waits).toEqual([...BACKOFF_DELAYS_MS]);
    for (let i = 1; i < waits.length; i += 1) expect(waits[i]).toBeGreaterThan(waits[i - 1]!);
    const total = waits.reduce((sum, wait) => sum + wait, 0);
    expect(total).toBeGreaterThan(20 * 3600_000);
    expect(total).toBeLessThan(26 * 3600_000);
    expect(WEBHOOK_MAX_ATTEMPTS).toBe(9);
  });

  it('jitters each wait within ±20%', () => {
    expect(backoffSchedule(1, () => 0)).toBe(24_000);
    expect(backoffSchedule(1, () => 0.999999)).toBeCloseTo(36_000, -1);
  });

  it('gives up after the last attempt and refuses nonsense', () => {
    expect(backoffSchedule(WEBHOOK_MAX_ATTEMPTS)).toBeUndefined();
    expect(() => backoffSchedule(0)).toThrow(RangeError);
    expect(() => backoffSchedule(1.5)).toThrow(RangeError);
  });
});

describe('webhookRetryDelayMs', () => {
  it('honours a longer Retry-After, capped, and never shortens the schedule', () => {
    expect(webhookRetryDelayMs(1, 120_000, () => 0.5)).toBe(120_000);
    expect(webhookRetryDelayMs(1, 1_000, () => 0.5)).toBe(30_000);
    expect(webhookRetryDelayMs(1, 30 * 24 * 3600_000, () => 0.5)).toBe(MAX_RETRY_AFTER_MS);
    expect(webhookRetryDelayMs(WEBHOOK_MAX_ATTEMPTS, 1_000)).toBeUndefined();
  });
});
