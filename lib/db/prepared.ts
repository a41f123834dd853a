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
