/**
 * Text a request may hold that the database cannot keep as sent, so it is refused before it
 * reaches a statement:
 *
 * - the NUL character (U+0000): PostgreSQL stores none in `text` (22021, "invalid byte sequence")
 *   nor in `jsonb` (22P05, "unsupported Unicode escape sequence"), and cannot compare a query
 *   parameter holding one either;
 * - a lone UTF-16 surrogate (what the JSON escape `\ud800` alone makes): it has no UTF-8 form, so
 *   the driver would write U+FFFD in its place and the stored text would not be what was sent.
 */
export type TextFault = 'nul' | 'lone_surrogate';

export const NUL_MESSAGE = 'must not contain the NUL character (U+0000)';
export const LONE_SURROGATE_MESSAGE =
  'must be well-formed Unicode: it holds a lone UTF-16 surrogate (such as the JSON escape \\ud800 without its pair)';

export const TEXT_FAULT_MESSAGES: Record<TextFault, string> = {
  nul: NUL_MESSAGE,
  lone_surrogate: LONE_SURROGATE_MESSAGE,
};

/** The SQLSTATEs PostgreSQL (and PGlite) answer when a value holds a NUL. */
export const NUL_SQLSTATES: ReadonlySet<string> = new Set(['22021', '22P05']);

const ALL_FAULTS: readonly TextFault[] = ['nul', 'lone_surrogate'];

const HAS_FAULT: Record<TextFault, (text: string) => boolean> = {
  nul: (text) => text.includes('\u0000'),
  // Under the u flag a surrogate pair is one code point, so only a lone surrogate is category Cs.
  lone_surrogate: (text) => /\p{Cs}/u.test(text),
};

export interface TextFinding {
  /** Where the fault is: the keys and indexes from the root value to the string (or the object whose key holds it). */
  path: (string | number)[];
  /** `key`: one of the object's keys holds the fault, not a value. */
  in: 'value' | 'key';
  fault: TextFault;
}

/**
 * Every string (value or object key) of a JSON-like value holding one of `faults` (the first that
 * applies, in that order), in document order, at most `limit` of them. Only plain objects and
 * arrays are walked; anything else is not text.
 *
 * @example findTextFaults({ name: 'a\u0000b', tags: ['ok', '\ud800'] }) // [{ path: ['name'], in: 'value', fault: 'nul' }, { path: ['tags', 1], in: 'value', fault: 'lone_surrogate' }]
 */
export function findTextFaults(
  value: unknown,
  options: { limit?: number; faults?: readonly TextFault[] } = {},
): TextFinding[] {
  const limit = options.limit ?? 20;
  const faults = options.faults ?? ALL_FAULTS;
  const faultOf = (text: string) => faults.find((fault) => HAS_FAULT[fault](text));
  const found: TextFinding[] = [];
  const walk = (node: unknown, path: (string | number)[]): void => {
    if (found.length >= limit) return;
    if (typeof node === 'string') {
      const fault = faultOf(node);
      if (fault) found.push({ path, in: 'value', fault });
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
      const fault = faultOf(key);
      if (fault) {
        found.push({ path, in: 'key', fault });
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
