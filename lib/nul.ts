/**
 * PostgreSQL cannot store the NUL character (U+0000) in `text` (22021, "invalid byte sequence") nor
 * in `jsonb` (22P05, "unsupported Unicode escape sequence"), and it cannot compare a query parameter
 * holding one either: such a value has to be refused before it reaches a statement.
 */
export const NUL_MESSAGE = 'must not contain the NUL character (U+0000)';

/** The SQLSTATEs PostgreSQL (and PGlite) answer when a value holds a NUL. */
export const NUL_SQLSTATES: ReadonlySet<string> = new Set(['22021', '22P05']);

export interface NulFinding {
  /** Where the NUL is: the keys and indexes from the root value to the string (or the object whose key holds it). */
  path: (string | number)[];
  /** `key`: one of the object's keys holds the NUL, not a value. */
  in: 'value' | 'key';
}

/**
 * Every string (value or object key) of a JSON-like value holding U+0000, in document order, at
 * most `limit` of them. Only plain objects and arrays are walked; anything else is not text.
 *
 * @example findNul({ name: 'a\u0000b', tags: ['ok', '\u0000'] }) // [{ path: ['name'], in: 'value' }, { path: ['tags', 1], in: 'value' }]
 */
export function findNul(value: unknown, limit = 20): NulFinding[] {
  const found: NulFinding[] = [];
  const walk = (node: unknown, path: (string | number)[]): void => {
    if (found.length >= limit) return;
    if (typeof node === 'string') {
      if (node.includes('\u0000')) found.push({ path, in: 'value' });
      return;
    }
    if (Array.isArray(node)) {
      for (let index = 0; index < node.length && found.length < limit; index++)
        walk(node[index], [...path, index]);
      return;
    }
    if (!isPlainObject(node)) return;
    for (const [key, item] of Object.entries(node)) {
      if (found.length >= limit) return;
      if (key.includes('\u0000')) {
        found.push({ path, in: 'key' });
        continue;
      }
      walk(item, [...path, key]);
    }
  };
  walk(value, []);
  return found;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Whether a database error is PostgreSQL refusing a NUL (the driver's error, or one wrapping it as
 * drizzle's "Failed query: …" does).
 */
export function isNulStorageError(error: unknown): boolean {
  for (let current = error, depth = 0; current && typeof current === 'object' && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && NUL_SQLSTATES.has(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
