import { type SQL, sql } from 'drizzle-orm';
import type { Queryable } from './client';

/**
 * A query that drizzle builds once per database (or transaction) and then only runs, for the statements
 * of every message. Building a select of whole rows costs 0.1–0.2 ms of CPU each time (drizzle walks
 * every column), more than the round trip to the database. `build` calls `.prepare(name)` on a query
 * whose values are `sql.placeholder(...)`s; `name` is the statement name on the pg driver, so it must
 * be unique in the project.
 *
 * @example
 * const readAgent = preparedQuery((db) =>
 *   db.select().from(agents).where(eq(agents.id, sql.placeholder('agentId'))).prepare('read_agent'),
 * );
 * const [agent] = await readAgent(db).execute({ agentId });
 */
export function preparedQuery<Q>(build: (db: Queryable) => Q): (db: Queryable) => Q {
  const built = new WeakMap<Queryable, Q>();
  return (db) => {
    let query = built.get(db);
    if (query === undefined) {
      query = build(db);
      built.set(db, query);
    }
    return query;
  };
}

/**
 * `condition` as a check on rows found by other means, never as an index condition. A named statement
 * is planned once per connection and kept, and PostgreSQL plans it again only after an ANALYZE: planned
 * while a table was small, `agent_id = $1` on an index led by agent_id costs the same as the primary key
 * lookup beside it, and the plan then reads every row of the agent as the table grows. Wrapped, it can
 * only filter the row the primary key found. (`x is true` differs from `x` only for null, which a
 * where clause rejects alike.)
 *
 * @example
 * .where(and(eq(telegramMessages.id, sql.placeholder('messageId')), filterOnly(eq(telegramMessages.agentId, sql.placeholder('agentId')))))
 */
export function filterOnly(condition: SQL): SQL {
  return sql`(${condition}) is true`;
}
