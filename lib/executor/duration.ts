const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** Parses the SDK's duration strings ("1w2d3h4m5s", "30s", "500ms") into milliseconds. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') return value;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const parts = trimmed.matchAll(/(\d+(?:\.\d+)?)\s*(ms|w|d|h|m|s)/g);
  let total = 0;
  let consumed = 0;
  for (const [whole, amount, unit] of parts) {
    total += Number(amount) * (UNIT_MS[unit as string] as number);
    consumed += whole.length;
  }
  if (consumed === 0 || consumed !== trimmed.replace(/\s+/g, '').length) {
    throw new Error(`Invalid duration "${value}"`);
  }
  return total;
}

/** A Sleep op's name: a duration string, or an ISO time for sleepUntil. Returns the wake-up time. */
export function sleepUntil(name: string, now: number): number {
  if (/^\d{4}-\d{2}-\d{2}T/.test(name)) {
    const time = Date.parse(name);
    if (Number.isNaN(time)) throw new Error(`Invalid sleep time "${name}"`);
    return time;
  }
  return now + parseDuration(name);
}

/** The `retry-after` header: seconds, or an HTTP / ISO date. Returns the time to retry at. */
export function retryAfterTime(header: string, now: number): number | undefined {
  const trimmed = header.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return now + Number(trimmed) * 1_000;
  const time = Date.parse(trimmed);
  return Number.isNaN(time) ? undefined : time;
}
