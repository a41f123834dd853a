import { sql } from 'drizzle-orm';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { selectRows } from '../../lib/db/client';
import {
  EVENT_DEDUPE_WINDOW_MS,
  storeAndQueueEvents,
  storeAndQueueEventsWith,
} from '../../lib/executor/events';
import { createTestDatabase, databaseTargets, type TestDatabase } from '../support/db';

const NOW = Date.parse('2026-12-01T12:00:00Z');

/** The caller's writes of `storeAndQueueEventsWith`: row `id` of test_rows, letting event `id` through. */
const rowWrites = (id: string) => ({
  writes: sql`r as (insert into test_rows values (${id}) on conflict do nothing returning id)`,
  gate: sql`select id as external_id, null::jsonb as data from r`,
  select: sql`select id from r`,
});

describe.each(databaseTargets())('events stored and queued in one statement on %s', (target) => {
  let database: TestDatabase | undefined;
  afterEach(async () => {
    await database?.destroy();
    database = undefined;
  });
  const open = async () => {
    database = await createTestDatabase(target);
    return database.handle.db;
  };
  const events = (db: Awaited<ReturnType<typeof open>>) =>
    selectRows<{ id: string; external_id: string; name: string; data: unknown }>(
      db,
      sql`select id, external_id, name, data from executor_events order by received_at, name`,
    );
  const queued = (db: Awaited<ReturnType<typeof open>>) =>
    selectRows<{ run_id: string; kind: string }>(
      db,
      sql`select run_id::text, kind from executor_queue order by id`,
    );

  it('stores new events in order and queues one fan-out item each', async () => {
    const db = await open();
    const stored = await storeAndQueueEvents(
      db,
      [
        { name: 'test/a', data: { n: 1 } },
        { name: 'test/b', id: 'key-1', data: { n: 2 } },
      ],
      NOW,
    );
    expect(stored.map((event) => event.duplicate)).toEqual([false, false]);
    expect(stored[1]?.payload).toMatchObject({ id: 'key-1', name: 'test/b', data: { n: 2 }, ts: NOW });
    expect(stored[0]?.payload.id).toBe(stored[0]?.rowId);
    const rows = await events(db);
    expect(rows.map((row) => [row.id, row.external_id, row.data])).toEqual([
      [stored[0]?.rowId, stored[0]?.rowId, { n: 1 }],
      [stored[1]?.rowId, 'key-1', { n: 2 }],
    ]);
    expect(await queued(db)).toEqual(stored.map((event) => ({ run_id: event.rowId, kind: 'event' })));
  });

  it('an id seen in the last 24 h, or earlier in the batch, is a duplicate of the first event: not stored, not queued', async () => {
    const db = await open();
    const [first] = await storeAndQueueEvents(db, [{ name: 'test/a', id: 'once' }], NOW);
    const again = await storeAndQueueEvents(
      db,
      [
        { name: 'test/a', id: 'once' },
        { name: 'test/a', id: 'twice' },
        { name: 'test/a', id: 'twice' },
      ],
      NOW + 1000,
    );
    expect(again.map((event) => [event.duplicate, event.payload.id])).toEqual([
      [true, 'once'],
      [false, 'twice'],
      [true, 'twice'],
    ]);
    expect(again[0]?.rowId).toBe(first?.rowId);
    expect(again[2]?.rowId).toBe(again[1]?.rowId);
    expect((await events(db)).map((row) => row.external_id)).toEqual(['once', 'twice']);
    expect(await queued(db)).toHaveLength(2);
  });

  it('an id last seen before the dedupe window is an event again', async () => {
    const db = await open();
    const [first] = await storeAndQueueEvents(db, [{ name: 'test/a', id: 'old' }], NOW);
    const [later] = await storeAndQueueEvents(
      db,
      [{ name: 'test/a', id: 'old' }],
      NOW + EVENT_DEDUPE_WINDOW_MS + 1,
    );
    expect(later?.duplicate).toBe(false);
    expect(later?.rowId).not.toBe(first?.rowId);
    expect(await queued(db)).toHaveLength(2);
  });

  it('concurrent sends of one id: one event stored and queued, every other call told the winner', async () => {
    const db = await open();
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, n) =>
        storeAndQueueEvents(db, [{ name: 'test/race', id: 'same', data: { n } }], NOW),
      ),
    );
    const firsts = results.map(([event]) => event);
    const winners = firsts.filter((event) => !event?.duplicate);
    expect(winners).toHaveLength(1);
    expect(new Set(firsts.map((event) => event?.rowId))).toEqual(new Set([winners[0]?.rowId]));
    expect(await events(db)).toHaveLength(1);
    expect(await queued(db)).toHaveLength(1);
  });

  it("with the caller's rows: concurrent statements of one row and id store it, its event and its queue item once", async () => {
    const db = await open();
    await db.execute(sql`create table test_rows (id text primary key)`);
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, n) =>
        storeAndQueueEventsWith(db, rowWrites('same'), [{ name: 'test/race', id: 'same', data: { n } }], NOW),
      ),
    );
    expect(results.flat()).toEqual([{ id: 'same' }]);
    expect(await events(db)).toHaveLength(1);
    expect(await queued(db)).toHaveLength(1);
    // The gate yields nothing for a row already there: no event, no queue item, no dedupe claim.
    await db.execute(sql`insert into test_rows values ('there')`);
    expect(
      await storeAndQueueEventsWith(db, rowWrites('there'), [{ name: 'test/a', id: 'there' }], NOW),
    ).toEqual([]);
    expect((await events(db)).map((row) => row.external_id)).toEqual(['same']);
    expect(await selectRows(db, sql`select external_id from executor_event_ids`)).toEqual([
      { external_id: 'same' },
    ]);
  });

  it("with the caller's rows: a batch's events are queued in the batch's order, whatever the plan", async () => {
    const db = await open();
    await db.execute(sql`create table test_rows (id text primary key)`);
    // Ids whose text order is not the batch's ("row-10" sorts before "row-9"), as Telegram's are.
    const ids = Array.from({ length: 120 }, (_, n) => `row-${n}`);
    // Without hash joins the plan merge-joins the gate on the ids' text, in text order.
    const stored = await db.transaction(async (tx) => {
      await tx.execute(sql`set local enable_hashjoin = off`);
      return storeAndQueueEventsWith(
        tx,
        {
          writes: sql`r as (insert into test_rows select value from jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb) returning id)`,
          gate: sql`select id as external_id, null::jsonb as data from r`,
          select: sql`select count(*)::int as n from r`,
        },
        ids.map((id) => ({ name: 'test/ordered', id })),
        NOW,
      );
    });
    expect(stored).toEqual([{ n: ids.length }]);
    const order = await selectRows<{ external_id: string }>(
      db,
      sql`select e.external_id from executor_queue q join executor_events e on e.id = q.run_id::uuid order by q.id`,
    );
    expect(order.map((row) => row.external_id)).toEqual(ids);
  });
});

// LISTEN/NOTIFY is the plain PostgreSQL driver's (PGlite is one process and polls).
describe.skipIf(!inject('postgresAdminUrl'))('events stored and queued on PostgreSQL', () => {
  let database: TestDatabase | undefined;
  afterEach(async () => {
    await database?.destroy();
    database = undefined;
  });

  it('wakes the listening workers when it queued something, and only then', async () => {
    database = await createTestDatabase('postgres');
    const { handle } = database;
    const { db } = handle;
    let wakes = 0;
    const unlisten = await handle.listen?.('test_wake', () => {
      wakes += 1;
    });
    try {
      const settle = () => new Promise((resolve) => setTimeout(resolve, 300));
      await settle();
      const onListen = wakes; // a listener wakes once as it starts, for work queued before it
      await storeAndQueueEvents(db, [{ name: 'test/a', id: 'w' }], NOW, { notifyChannel: 'test_wake' });
      await settle();
      expect(wakes).toBe(onListen + 1);
      // A duplicate queues nothing; without a channel nobody is told.
      await storeAndQueueEvents(db, [{ name: 'test/a', id: 'w' }], NOW, { notifyChannel: 'test_wake' });
      await storeAndQueueEvents(db, [{ name: 'test/a' }], NOW);
      await settle();
      expect(wakes).toBe(onListen + 1);
      // With the caller's rows: a wake when its rows let an event through, none when they let nothing.
      await db.execute(sql`create table test_rows (id text primary key)`);
      const options = { notifyChannel: 'test_wake' };
      expect(
        await storeAndQueueEventsWith(db, rowWrites('r1'), [{ name: 'test/a', id: 'r1' }], NOW, options),
      ).toEqual([{ id: 'r1' }]);
      await settle();
      expect(wakes).toBe(onListen + 2);
      await storeAndQueueEventsWith(db, rowWrites('r1'), [{ name: 'test/a', id: 'r1' }], NOW, options);
      await settle();
      expect(wakes).toBe(onListen + 2);
    } finally {
      await unlisten?.();
    }
  });
});
