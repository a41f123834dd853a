/**
 * The subset of Inngest's CEL expressions the engine evaluates: dotted paths into `event` / `async`,
 * string / number / boolean / null literals, `+`, `==`, `!=`, `&&`, `||` and parentheses.
 * Anything else is rejected when the function is synced, with the position that failed.
 */

export type Scope = Record<string, unknown>;

type Node =
  | { type: 'literal'; value: unknown }
  | { type: 'path'; root: string; keys: string[] }
  | { type: 'binary'; op: '+' | '==' | '!=' | '&&' | '||'; left: Node; right: Node };

export class ExpressionError extends Error {
  constructor(
    readonly expression: string,
    reason: string,
  ) {
    super(`Unsupported expression "${expression}": ${reason}`);
    this.name = 'ExpressionError';
  }
}

type Token =
  | { kind: 'op'; value: string; at: number }
  | { kind: 'ident'; value: string; at: number }
  | { kind: 'string'; value: string; at: number }
  | { kind: 'number'; value: number; at: number };

const ROOTS = new Set(['event', 'async']);
const OPERATORS = ['&&', '||', '==', '!=', '+', '(', ')', '.'];

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const ch = source[i] as string;
    if (/\s/.test(ch)) {
      i += 1;
      continue;
    }
    const op = OPERATORS.find((candidate) => source.startsWith(candidate, i));
    if (op && !(op === '.' && /[0-9]/.test(source[i + 1] ?? ''))) {
      tokens.push({ kind: 'op', value: op, at: i });
      i += op.length;
      continue;
    }
    if (ch === '"' || ch === "'") {
      let value = '';
      let j = i + 1;
      while (j < source.length && source[j] !== ch) {
        if (source[j] === '\\' && j + 1 < source.length) {
          const next = source[j + 1] as string;
          value += ({ n: '\n', t: '\t', r: '\r' } as Record<string, string>)[next] ?? next;
          j += 2;
        } else {
          value += source[j];
          j += 1;
        }
      }
      if (j >= source.length) throw new ExpressionError(source, `unterminated string at ${i}`);
      tokens.push({ kind: 'string', value, at: i });
      i = j + 1;
      continue;
    }
    const number = /^-?(\d+\.?\d*|\.\d+)/.exec(source.slice(i));
    if (number && (ch !== '-' || tokens.length === 0 || tokens[tokens.length - 1]?.kind === 'op')) {
      tokens.push({ kind: 'number', value: Number(number[0]), at: i });
      i += number[0].length;
      continue;
    }
    const ident = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(i));
    if (ident) {
      tokens.push({ kind: 'ident', value: ident[0], at: i });
      i += ident[0].length;
      continue;
    }
    throw new ExpressionError(source, `unexpected "${ch}" at ${i}`);
  }
  return tokens;
}

const PRECEDENCE: Record<string, number> = { '||': 1, '&&': 2, '==': 3, '!=': 3, '+': 4 };

function parse(source: string): Node {
  const tokens = tokenize(source);
  let pos = 0;
  const peek = () => tokens[pos];
  const fail = (reason: string): never => {
    throw new ExpressionError(source, reason);
  };

  function primary(): Node {
    const token = tokens[pos++];
    if (!token) return fail('unexpected end');
    if (token.kind === 'string' || token.kind === 'number') return { type: 'literal', value: token.value };
    if (token.kind === 'op' && token.value === '(') {
      const inner = binary(0);
      const close = tokens[pos++];
      if (close?.kind !== 'op' || close.value !== ')') fail(`expected ")" at ${close?.at ?? 'end'}`);
      return inner;
    }
    if (token.kind === 'ident') {
      if (token.value === 'true' || token.value === 'false')
        return { type: 'literal', value: token.value === 'true' };
      if (token.value === 'null') return { type: 'literal', value: null };
      if (!ROOTS.has(token.value))
        fail(`unknown name "${token.value}" at ${token.at} (expected event or async)`);
      const keys: string[] = [];
      while (peek()?.kind === 'op' && peek()?.value === '.') {
        pos += 1;
        const key = tokens[pos++];
        if (key?.kind !== 'ident') fail(`expected a field name after "." at ${key?.at ?? 'end'}`);
        keys.push((key as Token).value as string);
      }
      if (peek()?.kind === 'op' && peek()?.value === '(')
        fail(`function calls are not supported (at ${peek()?.at})`);
      return { type: 'path', root: token.value, keys };
    }
    return fail(`unexpected "${token.value}" at ${token.at}`);
  }

  function binary(minPrecedence: number): Node {
    let left = primary();
    for (;;) {
      const token = peek();
      if (!token) return left;
      if (token.kind !== 'op' || token.value === '(' || token.value === '.')
        fail(`unexpected "${token.value}" at ${token.at}`);
      if (token.value === ')') return left;
      const precedence = PRECEDENCE[token.value as string];
      if (precedence === undefined) return fail(`unsupported operator "${token.value}" at ${token.at}`);
      if (precedence <= minPrecedence) return left;
      pos += 1;
      const right = binary(precedence);
      left = { type: 'binary', op: token.value as '+', left, right };
    }
  }

  if (tokens.length === 0) fail('empty expression');
  const node = binary(0);
  if (pos < tokens.length) fail(`unexpected "${tokens[pos]?.value}" at ${tokens[pos]?.at}`);
  return node;
}

function lookup(value: unknown, keys: string[]): unknown {
  let current = value;
  for (const key of keys) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return (a ?? null) === (b ?? null);
  if (typeof a === 'object' && typeof b === 'object') return JSON.stringify(a) === JSON.stringify(b);
  return false;
}

function evaluate(node: Node, scope: Scope): unknown {
  switch (node.type) {
    case 'literal':
      return node.value;
    case 'path':
      return lookup(scope[node.root], node.keys);
    case 'binary': {
      if (node.op === '&&')
        return Boolean(evaluate(node.left, scope)) && Boolean(evaluate(node.right, scope));
      if (node.op === '||')
        return Boolean(evaluate(node.left, scope)) || Boolean(evaluate(node.right, scope));
      const left = evaluate(node.left, scope);
      const right = evaluate(node.right, scope);
      if (node.op === '==') return equal(left, right);
      if (node.op === '!=') return !equal(left, right);
      if (typeof left === 'number' && typeof right === 'number') return left + right;
      return `${left ?? ''}${right ?? ''}`;
    }
  }
}

export interface CompiledExpression {
  source: string;
  evaluate(scope: Scope): unknown;
  /** Truthiness, for `if` expressions. */
  test(scope: Scope): boolean;
  /** A string key (concurrency, throttle, idempotency). */
  key(scope: Scope): string;
}

const cache = new Map<string, CompiledExpression>();

/** Parses once (cached); throws `ExpressionError` naming what is unsupported. */
export function compileExpression(source: string): CompiledExpression {
  const cached = cache.get(source);
  if (cached) return cached;
  const node = parse(source);
  const compiled: CompiledExpression = {
    source,
    evaluate: (scope) => evaluate(node, scope),
    test: (scope) => Boolean(evaluate(node, scope)),
    key: (scope) => {
      const value = evaluate(node, scope);
      return typeof value === 'string' ? value : JSON.stringify(value ?? null);
    },
  };
  if (cache.size > 1000) cache.clear();
  cache.set(source, compiled);
  return compiled;
}
