import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { type Database, type Queryable, selectRows } from '../../lib/db/client';
import { tryStart } from '../../lib/executor/apply';
import { fanOutAll } from '../../lib/executor/events';
import type { CompiledFunction } from '../../lib/executor/function-config';
import { completeRuns } from '../../lib/executor/leased-writes';
import { endingRuns, endRun, failRun } from '../../lib/executor/runs';
import { iso } from '../../lib/executor/sql-values';
import type { EventPayload, QueueItem, Registry } from '../../lib/executor/types';
import { createTestDatabase, type TestDatabase } from '../support/db';
import { until } from '../support/until';

const NOW = Date.parse('2026-03-01T10:00:00.000Z');
const KEY = 'fn-one-at-a-time:same';

/*
 * A run that ends frees its concurrency slot and wakes the run queued behind it on its key. A worker
 * may be deciding on that queued run at the same moment, and see the slot still taken: neither may
 * leave it to the one-second re-check. Only real PostgreSQL runs transactions side by side (PGlite's
 * are one after another).
 */
describe.skipIf(!inject('postgresAdminUrl'))('a slot freed while a queued run tries to start', () => {
  let database: TestDatabase;
  let db: Database;
  const registry: Registry = new Map();

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    db = database.handle.db;
  });
  afterAll(async () => {
    await database?.destroy();
  });
  beforeEach(async () => {
    await db.execute(
      sql`truncate executor_runs, executor_queue, executor_start_keys, executor_concurrency cascade`,
    );
  });

  async function insertRun(status: 'running' | 'queued'): Promise<string> {
    const id = randomUUID();
    await db.execute(
      sql`insert into executor_runs (id, function_id, event, status, concurrency, created_at)
          values (${id}, 'fn-one-at-a-time', '{"name":"test/one","data":{}}'::jsonb, ${status},
                  ${JSON.stringify([{ key: KEY, limit: 1 }])}::jsonb, ${iso(NOW)}::timestamptz)`,
    );
    return id;
  }

  async function insertItem(runId: string, kind: 'invoke' | 'start', leasedBy: string): Promise<QueueItem> {
    const [row] = await selectRows<{ id: string | number }>(
      db,
      sql`insert into executor_queue (run_id, kind, available_at, leased_until, leased_by)
          values (${runId}, ${kind}, ${iso(NOW)}::timestamptz, ${iso(NOW + 30_000)}::timestamptz, ${leasedBy})
          returning id`,
    );
    return { id: Number(row?.id), runId, kind, stepId: '', attempt: 0, meta: null };
  }

  /** Run one holds the key's only slot (its invoke leased to worker A); run two waits on the key, its start leased to B. */
  async function oneRunningOneQueued() {
    const running = await insertRun('running');
    const runningItem = await insertItem(running, 'invoke', 'worker-a');
    await db.execute(sql`insert into executor_concurrency (key, run_id) values (${KEY}, ${running})`);
    const queued = await insertRun('queued');
    const start = await insertItem(queued, 'start', 'worker-b');
    await db.execute(sql`insert into executor_start_keys (key, item_id) values (${KEY}, ${start.id})`);
    return { running, runningItem, queued, start };
  }

  /**
   * Runs `work` in a transaction and holds it open: `result` is what `work` returned, `commit()` lets
   * the transaction commit, and `committed` settles once it has.
   */
  function heldTransaction<T>(work: (tx: Queryable) => Promise<T>) {
    let commit = () => {};
    const mayCommit = new Promise<void>((resolve) => {
      commit = resolve;
    });
    let reported: (value: T) => void = () => {};
    const result = new Promise<T>((resolve) => {
      reported = resolve;
    });
    const committed = db.transaction(async (tx) => {
      reported(await work(tx));
      await mayCommit;
    });
    return { result: Promise.race([result, committed.then(() => result)]), commit, committed };
  }

  /** Whether some session of this database waits on an advisory lock. */
  async function someoneWaitsOnALock(): Promise<boolean> {
    const rows = await selectRows<{ n: number }>(
      db,
      sql`select count(*)::int as n from pg_locks l join pg_stat_activity a on a.pid = l.pid
          where l.locktype = 'advisory' and not l.granted and a.datname = current_database()`,
    );
    return (rows[0]?.n ?? 0) > 0;
  }

  /** How many sessions of this database wait on a lock of any kind. */
  async function lockWaiters(): Promise<number> {
    const rows = await selectRows<{ n: number }>(
      db,
      sql`select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`,
    );
    return rows[0]?.n ?? 0;
  }

  /** The runs' statuses by id. */
  async function statusesOf(...ids: string[]): Promise<Record<string, string>> {
    const runs = await selectRows<{ id: string; status: string }>(
      db,
      sql`select id, status from executor_runs where id = any(${`{${ids.join(',')}}`}::uuid[])`,
    );
    return Object.fromEntries(runs.map((run) => [run.id, run.status]));
  }

  /** Holds the run's row in a transaction of its own, so others queue for it in the order they come. */
  async function holdRow(runId: string) {
    const holder = heldTransaction((tx) =>
      tx.execute(sql`select 1 from executor_runs where id = ${runId} for update`),
    );
    await holder.result;
    return holder;
  }

  async function startItem(id: number) {
    const [row] = await selectRows<{ available_at: Date | string; kind: string }>(
      db,
      sql`select available_at, kind from executor_queue where id = ${id}`,
    );
    return row && { kind: row.kind, availableAt: new Date(row.available_at).getTime() };
  }

  it('a completion committed while the start decides wakes the start once it has decided', async () => {
    const { running, runningItem, queued, start } = await oneRunningOneQueued();
    const deciding = heldTransaction((tx) =>
      tryStart(tx, start, { workerId: 'worker-b', now: NOW, registry }),
    );
    expect(await deciding.result).toBeUndefined();

    let completed = false;
    const completion = completeRuns(
      db,
      [{ runId: running, itemId: runningItem.id, output: null }],
      'worker-a',
      NOW,
    ).then((written) => {
      completed = true;
      return written;
    });
    // Either it waits for the deciding transaction (the fix) or it is done without it.
    await until(async () => completed || (await someoneWaitsOnALock()), 'the completion to end or to wait');
    deciding.commit();
    await deciding.committed;
    expect(await completion).toEqual([true]);

    expect(await startItem(start.id)).toEqual({ kind: 'start', availableAt: NOW });
    expect(await statusesOf(queued)).toEqual({ [queued]: 'queued' });
  });

  it('a run ended in a transaction while the start decides wakes the start once it has decided', async () => {
    const { running, start } = await oneRunningOneQueued();
    const deciding = heldTransaction((tx) =>
      tryStart(tx, start, { workerId: 'worker-b', now: NOW, registry }),
    );
    expect(await deciding.result).toBeUndefined();

    let ended = false;
    const ending = db
      .transaction((tx) => endRun(tx, running, 'completed', { output: null }, NOW))
      .then(() => {
        ended = true;
      });
    await until(async () => ended || (await someoneWaitsOnALock()), 'the end to commit or to wait');
    deciding.commit();
    await deciding.committed;
    await ending;

    expect(await startItem(start.id)).toEqual({ kind: 'start', availableAt: NOW });
  });

  it('a start deciding while a run ends in a transaction waits for it, and starts', async () => {
    const { running, queued, start } = await oneRunningOneQueued();
    const ending = heldTransaction((tx) => endRun(tx, running, 'completed', { output: null }, NOW));
    await ending.result;

    let decided = false;
    const deciding = db
      .transaction((tx) => tryStart(tx, start, { workerId: 'worker-b', now: NOW, registry }))
      .then((started) => {
        decided = true;
        return started;
      });
    await until(async () => decided || (await someoneWaitsOnALock()), 'the start to decide or to wait');
    ending.commit();
    await ending.committed;

    expect(await deciding).toMatchObject({ functionId: 'fn-one-at-a-time' });
    expect(await startItem(start.id)).toEqual({ kind: 'invoke', availableAt: NOW });
    expect(await statusesOf(queued)).toEqual({ [queued]: 'running' });
  });

  it('a transaction cancelling the running run, then the queued one a worker is starting, does not deadlock with it', async () => {
    const { running, queued, start } = await oneRunningOneQueued();
    for (const [runId, eventName] of [
      [running, 'test/cancel-running'],
      [queued, 'test/cancel-queued'],
    ]) {
      await db.execute(
        sql`insert into executor_cancels (run_id, event_name) values (${runId}, ${eventName})`,
      );
    }
    // Someone holds the queued run's row: the worker starting it queues for the row first, the
    // cancelling transaction second, so the worker gets the row while the cancel has ended the first run.
    const holder = await holdRow(queued);
    const deciding = db.transaction((tx) =>
      tryStart(tx, start, { workerId: 'worker-b', now: NOW, registry }),
    );
    await until(async () => (await lockWaiters()) >= 1, 'the start to wait for the run');
    const events = ['test/cancel-running', 'test/cancel-queued'].map((name, i) => ({
      rowId: randomUUID(),
      payload: { name, data: {}, id: `cancel-${i}`, ts: NOW } as EventPayload,
      duplicate: false,
    }));
    const emitted: string[] = [];
    const cancelling = db.transaction((tx) =>
      fanOutAll(tx, new Map(), events, {
        now: NOW,
        emit: async (_tx, event) => {
          emitted.push(event.name);
        },
      }),
    );
    await until(async () => (await lockWaiters()) >= 2, 'the cancel to wait for the run');
    holder.commit();
    await holder.committed;

    const [started, cancelled] = await Promise.allSettled([deciding, cancelling]);
    expect(started).toEqual({ status: 'fulfilled', value: undefined });
    expect(cancelled.status).toBe('fulfilled');
    expect(emitted).toEqual(['inngest/function.cancelled', 'inngest/function.cancelled']);
    expect(await statusesOf(running, queued)).toEqual({
      [running]: 'cancelled',
      [queued]: 'cancelled',
    });
  });

  it('a run failing whose failure event cancels the queued run a worker is starting does not deadlock with it', async () => {
    const { running, queued, start } = await oneRunningOneQueued();
    await db.execute(
      sql`insert into executor_cancels (run_id, event_name) values (${queued}, 'inngest/function.failed')`,
    );
    const holder = await holdRow(queued);
    const deciding = db.transaction((tx) =>
      tryStart(tx, start, { workerId: 'worker-b', now: NOW, registry }),
    );
    await until(async () => (await lockWaiters()) >= 1, 'the start to wait for the run');
    // As the executor does: the failure's event fans out in the same transaction, its cancels
    // sharing the transaction's collector of freed keys.
    const failing = db.transaction((tx) =>
      endingRuns(tx, NOW, (released) => {
        const context = {
          now: NOW,
          released,
          emit: async (inTx: typeof tx, payload: EventPayload) => {
            await fanOutAll(inTx, new Map(), [{ rowId: randomUUID(), payload, duplicate: false }], context);
          },
        };
        return failRun(
          tx,
          running,
          { functionId: 'fn-one-at-a-time', event: { name: 'test/one', data: {}, id: 'one', ts: NOW } },
          new Error('boom'),
          context,
        );
      }),
    );
    await until(async () => (await lockWaiters()) >= 2, 'the failure to wait for the run');
    holder.commit();
    await holder.committed;

    const [started, failed] = await Promise.allSettled([deciding, failing]);
    expect(started).toEqual({ status: 'fulfilled', value: undefined });
    expect(failed.status).toBe('fulfilled');
    expect(await statusesOf(running, queued)).toEqual({
      [running]: 'failed',
      [queued]: 'cancelled',
    });
  });

  it('cancelling a queued run while a worker starts the one ahead of it on the key does not deadlock with it', async () => {
    // Two slots on the key, both free: the older run may start, the younger waits behind it.
    const ids: string[] = [];
    const items: QueueItem[] = [];
    for (let run = 0; run < 2; run += 1) {
      const id = randomUUID();
      await db.execute(
        sql`insert into executor_runs (id, function_id, event, status, concurrency, created_at)
            values (${id}, 'fn-two', '{"name":"test/two","data":{}}'::jsonb, 'queued',
                    ${JSON.stringify([{ key: KEY, limit: 2 }])}::jsonb, ${iso(NOW)}::timestamptz)`,
      );
      const item = await insertItem(id, 'start', 'worker-a');
      await db.execute(sql`insert into executor_start_keys (key, item_id) values (${KEY}, ${item.id})`);
      ids.push(id);
      items.push(item);
    }
    const [older = '', younger = ''] = ids;
    // Nobody has taken the younger run's start yet; it was put back for its re-check.
    await db.execute(
      sql`update executor_queue set leased_by = null, leased_until = null,
            available_at = ${iso(NOW + 1_000)}::timestamptz where id = ${items[1]?.id}`,
    );
    let ended = () => {};
    const endedYounger = new Promise<void>((resolve) => {
      ended = resolve;
    });
    // The cancel has deleted the younger run's start item when the worker, holding the key, starts
    // the older run and wakes those behind it, that item among them; then the cancel goes on.
    const cancelling = db.transaction((tx) =>
      endingRuns(tx, NOW, async (released) => {
        await endRun(tx, younger, 'cancelled', {}, NOW, released);
        ended();
        await until(async () => (await lockWaiters()) >= 1, 'the start to wait for the deleted item');
      }),
    );
    await endedYounger;
    const starting = db.transaction((tx) =>
      tryStart(tx, items[0] as QueueItem, { workerId: 'worker-a', now: NOW, registry }),
    );

    const [cancelled, started] = await Promise.allSettled([cancelling, starting]);
    expect(cancelled.status).toBe('fulfilled');
    expect(started.status).toBe('fulfilled');
    expect(await statusesOf(older, younger)).toEqual({ [older]: 'running', [younger]: 'cancelled' });
  });

  it('a throttled start takes its keys in key order, as the wake does: no deadlock with a run ending', async () => {
    // Declared out of key order, the first with a slot free: the start goes on to the second key.
    const concurrency = [
      { key: 'z-reply', limit: 2 },
      { key: 'a-account', limit: 10 },
    ];
    const throttled: Registry = new Map([
      [
        'fn-throttled',
        { throttle: { limit: 100, burst: 0, periodMs: 60_000 } } as unknown as CompiledFunction,
      ],
    ]);
    const insert = async (status: 'running' | 'queued') => {
      const id = randomUUID();
      await db.execute(
        sql`insert into executor_runs (id, function_id, event, status, concurrency, throttle_key, created_at)
            values (${id}, 'fn-throttled', '{"name":"test/t","data":{}}'::jsonb, ${status},
                    ${JSON.stringify(concurrency)}::jsonb, 'fn-throttled:', ${iso(NOW)}::timestamptz)`,
      );
      return id;
    };
    const running = await insert('running');
    await db.execute(
      sql`insert into executor_concurrency (key, run_id) values ('z-reply', ${running}), ('a-account', ${running})`,
    );
    const queued = await insert('queued');
    const start = await insertItem(queued, 'start', 'worker-b');

    // Someone holds the first key in order; the ending run queues for it, then the start does.
    const holder = heldTransaction((tx) =>
      tx.execute(sql`select pg_advisory_xact_lock(hashtext('a-account'))`),
    );
    await holder.result;
    const ending = db.transaction((tx) => endRun(tx, running, 'completed', { output: null }, NOW));
    await until(
      async () => (await someoneWaitsOnALock()) && (await lockWaiters()) >= 1,
      'the end to wait for the key',
    );
    const deciding = db.transaction((tx) =>
      tryStart(tx, start, { workerId: 'worker-b', now: NOW, registry: throttled }),
    );
    await until(async () => (await lockWaiters()) >= 2, 'the start to wait for the key');
    holder.commit();
    await holder.committed;

    const [ended, started] = await Promise.allSettled([ending, deciding]);
    expect(ended.status).toBe('fulfilled');
    expect(started).toMatchObject({ status: 'fulfilled', value: { functionId: 'fn-throttled' } });
  });
});
