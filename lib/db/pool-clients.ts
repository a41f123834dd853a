import type pg from 'pg';

/** What pg rejects a query with when no answer came within the pool's `query_timeout`. */
export const QUERY_TIMEOUT_MESSAGE = 'Query read timeout';

/**
 * How long a connection of the pool may take to open, or a caller wait for a free one: a host that
 * drops packets would otherwise hold a request until TCP gives up, minutes later. Longer than the
 * start-up's 15 s wait for the database's first answer, whose message says more.
 */
export const CONNECT_TIMEOUT_MS = 20_000;

/** pg-pool's own test for a client it must not hand out again (it reads the same fields). */
function unusable(client: pg.PoolClient): boolean {
  const state = client as unknown as { _queryable?: boolean; _ending?: boolean };
  return state._queryable === false || state._ending === true;
}

/**
 * Keeps a checked-out client's failure from costing the process or the pool. For the pool's
 * `connect` event.
 *
 * - pg emits `error` on a client whose connection breaks; the pool listens only while the client is
 *   idle, and drizzle never does, so a break during a transaction was an uncaught error that ended
 *   the process. The query that was running rejects on its own: the event needs no more than a
 *   listener.
 * - A query that timed out leaves the connection waiting for the server's answer: inside a
 *   transaction, drizzle's ROLLBACK would queue behind it and time out in turn, and the pool would
 *   take the client back still stuck. The client is ended (pg destroys the socket of a client with a
 *   query in flight), so what is queued fails at once and the server rolls the transaction back.
 * - Drizzle never releases a client whose BEGIN failed (its `begin` runs outside its try), which
 *   shrank the pool for good. A client that timed out or broke is released here, and its holder's
 *   own release later does nothing.
 *
 * Only promise-style queries come through the wrapper, those of a checked-out client: pool.query
 * uses a callback and releases with the error itself.
 */
export function guardPoolClient(client: pg.PoolClient): void {
  client.on('error', () => {});
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  client.query = ((...args: unknown[]) => {
    const result = query(...args);
    if (result instanceof Promise) {
      // A side branch: the caller gets `result` itself, rejection and all.
      result.catch((error: unknown) => {
        const timedOut = error instanceof Error && error.message === QUERY_TIMEOUT_MESSAGE;
        if (timedOut) client.end().catch(() => {});
        else if (!unusable(client)) return;
        const release = client.release;
        client.release = () => {};
        release(error instanceof Error ? error : new Error(String(error)));
      });
    }
    return result;
  }) as typeof client.query;
}
