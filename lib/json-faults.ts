import { errorChain } from './errors';
/**
 * What a parsed JSON value may hold that the database cannot keep as sent, so it is refused (or,
 * for a Telegram update, repaired) before it reaches a statement:
 *
 * - the NUL character (U+0000): PostgreSQL stores none in `text` (22021, "invalid byte sequence")
 *   nor in `jsonb` (22P05, "unsupported Unicode escape sequence"), and cannot compare a query
 *   parameter holding one either;
 * - a lone UTF-16 surrogate (what the JSON escape `\ud800` alone makes): it has no UTF-8 form, so
 *   the driver writes U+FFFD in its place in `text`, and `jsonb` refuses its escape outright;
 * - nesting deeper than `maxDepth`: `JSON.stringify` (which every statement parameter goes
 *   through) runs out of stack some thousands of levels down, which `JSON.parse` does not.
 */
export type JsonFault = 'nul' | 'lone_surrogate' | 'too_deep';

/** Deeper than any API body or Telegram update nests, and far short of exhausting a stack. */
export const MAX_JSON_DEPTH = 64;

export const NUL_MESSAGE = 'must not contain the NUL character (U+0000)';
export const LONE_SURROGATE_MESSAGE =
  'must be well-formed Unicode: it holds a lone UTF-16 surrogate (such as the JSON escape \\ud800 without its pair)';
export const TOO_DEEP_MESSAGE = `must not nest objects and arrays more than ${MAX_JSON_DEPTH} levels deep`;

export const JSON_FAULT_MESSAGES: Record<JsonFault, string> = {
  nul: NUL_MESSAGE,
  lone_surrogate: LONE_SURROGATE_MESSAGE,
  too_deep: TOO_DEEP_MESSAGE,
};

/** The SQLSTATEs PostgreSQL (and PGlite) answer when a value holds a NUL. */
export const NUL_SQLSTATES: ReadonlySet<string> = new Set(['22021', '22P05']);

type TextFault = Exclude<JsonFault, 'too_deep'>;

// Under the u flag a surrogate pair is one code point, so only a lone surrogate is category Cs.
// (Global, for replace only: test() on a global pattern keeps state between calls.)
const LONE_SURROGATE = /\p{Cs}/gu;

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding the NUL is the point.
const SUSPECT = /\u0000|\p{Cs}/u;

/** The string's fault, a NUL named before a lone surrogate; one pattern test for the clean majority. */
function faultOf(text: string): TextFault | undefined {
  if (!SUSPECT.test(text)) return undefined;
  return text.includes('\u0000') ? 'nul' : 'lone_surrogate';
}

export interface JsonFinding {
  /** Where the fault is: the keys and indexes from the root value to the string (or the object whose key holds it, or the container nested too deep). */
  path: (string | number)[];
  /** `key`: one of the object's keys holds the fault, not a value. */
  in: 'value' | 'key';
  fault: JsonFault;
}

/**
 * Every string (value or object key) of a JSON-like value holding a NUL or a lone surrogate (the
 * NUL named first), and every object or array nested deeper than `maxDepth` (not walked into),
 * in document order, at most `limit` of them. Only plain objects and arrays are walked; anything
 * else is not text. The walk keeps its own stack, so no depth of input can overflow the call stack.
 *
 * @example findJsonFaults({ name: 'a\u0000b', tags: ['ok', '\ud800'] }) // [{ path: ['name'], in: 'value', fault: 'nul' }, { path: ['tags', 1], in: 'value', fault: 'lone_surrogate' }]
 */
export function findJsonFaults(
  value: unknown,
  options: { limit?: number; maxDepth?: number } = {},
): JsonFinding[] {
  const limit = options.limit ?? 20;
  const maxDepth = options.maxDepth ?? MAX_JSON_DEPTH;
  const found: JsonFinding[] = [];
  // What is still to visit, the next last: children go on in reverse, to keep document order. A
  // faulty key is an entry of its own, so it is found in order with the values around it.
  type Pending =
    | { node: unknown; path: (string | number)[] }
    | { keyFault: TextFault; path: (string | number)[] };
  const pending: Pending[] = [{ node: value, path: [] }];
  while (pending.length > 0 && found.length < limit) {
    const next = pending.pop() as Pending;
    const { path } = next;
    if ('keyFault' in next) {
      found.push({ path, in: 'key', fault: next.keyFault });
      continue;
    }
    const { node } = next;
    if (typeof node === 'string') {
      const fault = faultOf(node);
      if (fault) found.push({ path, in: 'value', fault });
      continue;
    }
    const isArray = Array.isArray(node);
    if (!isArray && !isPlainObject(node)) continue;
    if (path.length >= maxDepth) {
      found.push({ path, in: 'value', fault: 'too_deep' });
      continue;
    }
    if (isArray) {
      for (let index = node.length - 1; index >= 0; index--)
        pending.push({ node: node[index], path: [...path, index] });
      continue;
    }
    const keys = Object.keys(node);
    for (let index = keys.length - 1; index >= 0; index--) {
      const key = keys[index] as string;
      const keyFault = faultOf(key);
      pending.push(
        keyFault
          ? { keyFault, path }
          : { node: (node as Record<string, unknown>)[key], path: [...path, key] },
      );
    }
  }
  return found;
}

/**
 * A copy of a JSON-like value with every lone surrogate, in values and keys, replaced by U+FFFD
 * (the one code point that says "a character was lost here"). Nesting deeper than `MAX_JSON_DEPTH`
 * is kept as it is, for findJsonFaults to refuse.
 */
export function replaceLoneSurrogates(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.replace(LONE_SURROGATE, '\uFFFD');
  if (depth >= MAX_JSON_DEPTH) return value;
  if (Array.isArray(value)) return value.map((item) => replaceLoneSurrogates(item, depth + 1));
  if (!isPlainObject(value)) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [
      key.replace(LONE_SURROGATE, '\uFFFD'),
      replaceLoneSurrogates(item, depth + 1),
    ]),
  );
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
  for (const { code } of errorChain(error)) {
    if (typeof code === 'string' && NUL_SQLSTATES.has(code)) return true;
  }
  return false;
}

/** `text` with NUL and lone surrogates, which PostgreSQL's text and jsonb refuse, as U+FFFD. */
export function storableText(text: string): string {
  return text.replace(LONE_SURROGATE, '\uFFFD').replaceAll('\u0000', '\uFFFD');
}
