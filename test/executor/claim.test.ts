import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../lib/db/client';
import { selectRows } from '../../lib/db/client';
import { claimItems, claimStatement } from '../../lib/executor/claim';
import { createTestDatabase, databaseTargets, type TestDatabase } from '../support/db';
import { explainPlan, joinsAbovePicks } from '../support/plans';

const T0 = Date.parse('2026-03-01T10:00:00.000Z');

describe.each(databaseTargets())('claiming queue items on %s', (target) => {
  let database: TestDatabase;
  let db: Database;
  beforeAll(async () => {
    database = await createTestDatabase(target);
    db = database.handle.db;
  });
  afterAll(async () => {
    await database?.destroy();
  });

  /** Queues `count` event items, the i-th due at T0 + i ms; returns their ids, oldest first. */
  async function queue(count: number, from = 0): Promise<number[]> {
    const rows = await selectRows<{ id: string | number }>(
      db,
      sql`insert into executor_queue (run_id, kind, available_at)
          select gen_random_uuid(), 'event', ${new Date(T0).toISOString()}::timestamptz + (g * interval '1 millisecond')
          from generate_series(${from}::int, ${from + count - 1}::int) g
          order by g
          returning id`,
    );
    return rows.map((row) => Number(row.id));
  }

  it('leases at most the limit, the oldest due first, even planned with statistics of a short queue', async () => {
    // Statistics taken while the queue held one item, as autovacuum may have taken them before a burst.
    const [first] = await queue(1);
    await db.execute(sql`analyze executor_queue`);
    const ids = [first!, ...(await queue(300, 1))];
    const now = T0 + 10_000;
    const workerId = randomUUID();

    const claimed = await claimItems(db, { limit: 10, now, leaseMs: 30_000, workerId });
    expect(claimed.map((item) => item.id)).toEqual(ids.slice(0, 10));
    const next = await claimItems(db, { limit: 10, now, leaseMs: 30_000, workerId });
    expect(next.map((item) => item.id)).toEqual(ids.slice(10, 20));
    const leased = await selectRows<{ n: number }>(
      db,
      sql`select count(*)::int as n from executor_queue where leased_by = ${workerId}`,
    );
    expect(leased[0]?.n).toBe(20);
  });

  it('picks its items in one scan, never inside a join that runs it again for each row', async () => {
    // Which rows another transaction holds changes between two runs of a SKIP LOCKED pick, so no test
    // here can make a re-run pick others on cue; the plan shows whether it can happen.
    await queue(50, 1000);
    await db.execute(sql`analyze executor_queue`);
    const plan = await explainPlan(
      db,
      claimStatement({ limit: 10, now: T0 + 10_000, leaseMs: 30_000, workerId: 'w' }),
    );
    expect(joinsAbovePicks(plan)).toEqual([[]]);
  });
});
