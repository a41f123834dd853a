/** Epoch milliseconds as the ISO string a `::timestamptz` parameter takes. */
export const iso = (ms: number): string => new Date(ms).toISOString();

import { storableText } from '../json-faults';

/** How JSON.stringify writes what jsonb refuses: NUL and a lone surrogate (a pair is written as is). */
const JSONB_REFUSES = /\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/**
 * A value as the JSON text a `::jsonb` parameter takes (undefined becomes null). NUL and lone
 * surrogates become U+FFFD: a step output or error holding one (a receiver's binary reply quoted in
 * a message, say) could otherwise never be stored, and its step would run again and again.
 */
export const json = (value: unknown): string => {
  const text = JSON.stringify(value ?? null);
  if (!JSONB_REFUSES.test(text)) return text;
  return JSON.stringify(value ?? null, (_key, item: unknown) => {
    if (typeof item === 'string') return storableText(item);
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return item;
    return Object.fromEntries(Object.entries(item).map(([key, inner]) => [storableText(key), inner]));
  });
};
