import type pg from 'pg';

/**
 * Distinct statement texts named per process. Our statements come from code with their values as
 * parameters, so there are a few hundred at most; past the cap (a query that inlines values, say) the
 * rest run unnamed, so neither this map nor each server session's prepared statements grow without end.
 */
const MAX_NAMED = 500;

/** Only data statements have a plan worth keeping; DDL and transaction control run as they are. */
const PLANNED = /^\s*(select|insert|update|delete|with)\b/i;
/** A prepared statement holds one command: text with a second one (a migration's, say) runs unnamed. */
const SECOND_COMMAND = /;\s*\S/;

const names = new Map<string, string>();

/** The statement name for `text`, the same in every connection of the process; undefined if none. */
export function statementName(text: string): string | undefined {
  const known = names.get(text);
  if (known !== undefined || names.size >= MAX_NAMED) return known;
  if (!PLANNED.test(text) || SECOND_COMMAND.test(text)) return undefined;
  const name = `oc_${names.size + 1}`;
  names.set(text, name);
  return name;
}

function isPlainConfig(value: unknown): value is pg.QueryConfig {
  return (
    typeof value === 'object' &&
    value !== null &&
    Object.getPrototypeOf(value) === Object.prototype &&
    typeof (value as { text?: unknown }).text === 'string'
  );
}

/**
 * Makes `client` send each data statement as a named prepared statement, parsed once per connection.
 * PostgreSQL then skips parsing on every later run and, once a generic plan proves as good as the
 * custom ones (after five runs), planning too: under load, planning alone had taken more of the
 * server's time than executing. node-pg prepares a name on a connection the first time it is used
 * there and reuses it after (`connection.parsedStatements`). For the pool's `connect` event.
 */
export function nameStatements(client: pg.ClientBase): void {
  wrapQuery(client, (config) => {
    // A drizzle prepared query already has its name.
    if (config.name !== undefined) return config;
    const name = statementName(config.text);
    return name === undefined ? config : { ...config, name };
  });
}

/**
 * Makes `client` send every statement unnamed, the names of drizzle's prepared queries included: for
 * a pooler that cannot keep prepared statements (DATABASE_NAMED_STATEMENTS=false, and Neon's).
 */
export function unnameStatements(client: pg.ClientBase): void {
  wrapQuery(client, ({ name: _name, ...config }) => config);
}

function wrapQuery(client: pg.ClientBase, rewrite: (config: pg.QueryConfig) => pg.QueryConfig): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  client.query = ((...args: unknown[]) => {
    // A submittable (a pg.Query, a cursor) keeps its prototype: only plain configs are rewritten.
    if (isPlainConfig(args[0])) args[0] = rewrite(args[0]);
    return query(...args);
  }) as typeof client.query;
}
