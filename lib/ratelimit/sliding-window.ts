/**
 * When a request refused by @upstash/ratelimit's sliding window may pass. The window weighs the
 * previous window's count by the part of it still in view: `elapsed` milliseconds into a window, a
 * request passes while `floor((1 - elapsed / window) * previous) + current < limit` (its
 * `slidingWindow` Lua script, in the same double arithmetic as here). The weighted part shrinks as the
 * window goes on, so a slot frees before the window's end when this window's own count is under the
 * limit; when it is not, that count becomes the next window's `previous`, and a slot frees only part
 * way into the next window.
 *
 * Returns Unix milliseconds: the first millisecond at which the next request passes.
 */
export function slidingWindowFreeAt(input: {
  previous: number;
  current: number;
  limit: number;
  windowStart: number;
  windowMs: number;
}): number {
  const { limit, windowStart, windowMs } = input;
  if (input.current < limit) {
    return windowStart + firstPassingMs(input.previous, input.current, limit, windowMs);
  }
  return windowStart + windowMs + firstPassingMs(input.current, 0, limit, windowMs);
}

/** The first whole millisecond of a window (0 to its length) at which a request passes. */
function firstPassingMs(previous: number, current: number, limit: number, windowMs: number): number {
  const passes = (elapsed: number) => Math.floor((1 - elapsed / windowMs) * previous) + current < limit;
  if (current >= limit) return windowMs;
  if (previous <= 0) return 0;
  // (window - t) * previous < (limit - current) * window, solved for t; then nudged onto the
  // millisecond the script's rounding agrees with (one or two steps at most).
  let elapsed = Math.floor(windowMs - ((limit - current) * windowMs) / previous) + 1;
  elapsed = Math.min(Math.max(elapsed, 0), windowMs);
  while (elapsed > 0 && passes(elapsed - 1)) elapsed -= 1;
  while (elapsed < windowMs && !passes(elapsed)) elapsed += 1;
  return elapsed;
}
