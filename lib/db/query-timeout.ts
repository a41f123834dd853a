import type pg from 'pg';

/** What pg rejects a query with when no answer came within the pool's `query_timeout`. */
export const QUERY_TIMEOUT_MESSAGE = 'Query read timeout';

/**
 * How long a connection of the pool may take to open, or a caller wait for a free one: a host that
 * drops packets would otherwise hold a request until TCP gives up, minutes later. Longer than the
 * start-up's 15 s wait for the database's first answer, whose message says more.
 */
export const CONNECT_TIMEOUT_MS = 20_000;

/**
 * Ends `client` when one of its queries times out, and gives it back to the pool. pg rejects the
 * caller's query but leaves the connection waiting for the server's answer: inside a transaction,
 * drizzle's ROLLBACK would queue behind it and time out in turn, and the pool would take the client
 * back still stuck. Ending it (pg destroys the socket of a client with a query in flight) fails what
 * is queued at once, and the server rolls back the closed session's transaction. Drizzle never
 * releases a client whose BEGIN failed, which would shrink the pool for good: it is released here,
 * and the holder's own release later does nothing. Only promise-style queries come here, those of
 * a checked-out client (pool.query releases with the error itself). For the pool's `connect` event.
 */
export function endOnQueryTimeout(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  client.query = ((...args: unknown[]) => {
    const result = query(...args);
    if (result instanceof Promise) {
      // A side branch: the caller gets `result` itself, rejection and all.
      result.catch((error: unknown) => {
        if (!(error instanceof Error && error.message === QUERY_TIMEOUT_MESSAGE)) return;
        client.end().catch(() => {});
        const release = client.release;
        client.release = () => {};
        release(error);
      });
    }
    return result;
  }) as typeof client.query;
}
