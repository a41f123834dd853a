/** Epoch milliseconds as the ISO string a `::timestamptz` parameter takes. */
export const iso = (ms: number): string => new Date(ms).toISOString();

/** A value as the JSON text a `::jsonb` parameter takes (undefined becomes null). */
export const json = (value: unknown): string => JSON.stringify(value ?? null);
