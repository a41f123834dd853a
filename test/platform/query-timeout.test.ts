import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../api/app';
import { createDatabase, type DatabaseHandle } from '../../lib/db/client';
import { isDatabaseUnavailable } from '../../lib/db/unavailable';
import type { Services } from '../../lib/services';
import { apiRequest } from '../support/api-request';
import { createTestDatabase, type TestDatabase } from '../support/db';
import { type FreezableProxy, freezableProxy } from '../support/freezable-proxy';
import { captureLogger, createTestServices, TEST_ADMIN_KEY } from '../support/services';
import { until } from '../support/until';

const QUERY_TIMEOUT_MS = 1_000;

/*
 * A database that takes connections and then says nothing (a black-holed network, a wedged server)
 * must not hold requests until TCP gives up: a query unanswered for DATABASE_QUERY_TIMEOUT_MS fails
 * as "unavailable" (503), and its connection is closed rather than handed to the next caller.
 */
describe.skipIf(!inject('postgresAdminUrl'))('a PostgreSQL that stops answering', () => {
  let database: TestDatabase;
  let proxy: FreezableProxy;
  let handle: DatabaseHandle;

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    const url = new URL(database.url as string);
    proxy = await freezableProxy({ host: url.hostname, port: Number(url.port || 5432) });
    url.host = `127.0.0.1:${proxy.port}`;
    handle = await createDatabase({ url: url.toString(), poolSize: 2, queryTimeoutMs: QUERY_TIMEOUT_MS });
  });
  afterEach(() => proxy.thaw());
  afterAll(async () => {
    await handle?.close();
    await proxy?.close();
    await database?.destroy();
  });

  async function failure(work: Promise<unknown>): Promise<unknown> {
    return work.then(
      () => {
        throw new Error('the query answered');
      },
      (error: unknown) => error,
    );
  }

  it('fails a query as unavailable, closes its connection, and works again once the server answers', async () => {
    await handle.ping();
    proxy.freeze();
    const closedBefore = proxy.closedByClient;
    const error = await failure(handle.db.execute(sql`select 1`));
    expect(isDatabaseUnavailable(error)).toBe(true);
    await until(() => proxy.closedByClient === closedBefore + 1, 'the timed-out connection closed');
    proxy.thaw();
    await handle.ping();
  });

  it.each([
    ['its BEGIN', false],
    ['a statement after BEGIN', true],
  ])('in a transaction (%s), gives the pool its connection back closed, at once', async (_, begun) => {
    const closedBefore = proxy.closedByClient;
    // Twice, on a pool of two: a client kept checked out each time would leave none.
    for (let i = 0; i < 2; i++) {
      await handle.ping();
      if (!begun) proxy.freeze();
      const error = await failure(
        handle.db.transaction(async (tx) => {
          proxy.freeze();
          await tx.execute(sql`select 1`);
        }),
      );
      expect(isDatabaseUnavailable(error)).toBe(true);
      proxy.thaw();
    }
    await until(() => proxy.closedByClient === closedBefore + 2, 'the timed-out connections closed');
    for (let i = 0; i < 3; i++) await handle.db.transaction((tx) => tx.execute(sql`select 1`));
  });

  it('gives the pool back a connection that broke during BEGIN', async () => {
    // Two rounds on a pool of two: a client kept checked out each time would leave none.
    for (let i = 0; i < 2; i++) {
      await handle.ping();
      proxy.freeze();
      const work = failure(handle.db.transaction((tx) => tx.execute(sql`select 1`)));
      await until(() => proxy.heldFromClients > 0, 'BEGIN on its way');
      proxy.cut();
      expect(isDatabaseUnavailable(await work)).toBe(true);
      proxy.thaw();
    }
    for (let i = 0; i < 3; i++) await handle.db.transaction((tx) => tx.execute(sql`select 1`));
  });

  it('leaves the migrations connection without the bound: the lock wait and a migration take their time', async () => {
    const slept = await handle.withAdvisoryLock(727_999, async (db) => {
      await db.execute(sql`select pg_sleep(${(QUERY_TIMEOUT_MS * 1.5) / 1000})`);
      return 'done';
    });
    expect(slept).toBe('done');
  });

  it('answers an API request 503 with Retry-After', async () => {
    const logs = captureLogger();
    const services: Services = await createTestServices({ database: handle, logger: logs.logger });
    const app = createApp(services);
    await handle.ping();
    proxy.freeze();
    const res = await apiRequest(app, 'GET', '/api/v1/admin/customers', { key: TEST_ADMIN_KEY });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
  });
});
