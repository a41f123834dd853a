import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { selectRows } from '../../lib/db/client';
import { completeRuns, storeCheckpoints } from '../../lib/executor/leased-writes';
import { GroupCommit, roundsByKey } from '../../lib/group-commit';
import { createTestDatabase, databaseTargets, type TestDatabase } from '../support/db';
import { createExecutorHarness, type ExecutorHarness } from '../support/executor';

const APP = 'openclaw-platform';

/** A write that records each batch it was given and answers after `gate` opens. */
function recordingWrite(fail?: (item: number) => boolean) {
  const batches: number[][] = [];
  let open: () => void = () => {};
  let gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  return {
    batches,
    release() {
      open();
      gate = Promise.resolve();
    },
    write: async (items: number[]) => {
      batches.push(items);
      await gate;
      if (fail && items.some(fail)) throw new Error(`bad item in ${items.join(',')}`);
      return items.map((item) => item * 10);
    },
  };
}

describe('GroupCommit', () => {
  it('writes the first item at once and the ones that arrive meanwhile as one batch, in order', async () => {
    const w = recordingWrite();
    const commit = new GroupCommit(w.write, { maxParallel: 1 });
    const results = Promise.all([1, 2, 3, 4].map((item) => commit.submit(item)));
    w.release();
    expect(await results).toEqual([10, 20, 30, 40]);
    expect(w.batches).toEqual([[1], [2, 3, 4]]);
  });

  it('keeps batches within maxBatch and runs up to maxParallel at once', async () => {
    const w = recordingWrite();
    const commit = new GroupCommit(w.write, { maxParallel: 2, maxBatch: 2 });
    const results = Promise.all([1, 2, 3, 4, 5, 6].map((item) => commit.submit(item)));
    w.release();
    expect(await results).toEqual([10, 20, 30, 40, 50, 60]);
    expect(w.batches).toEqual([[1], [2], [3, 4], [5, 6]]);
  });

  it('writes a failed batch again one item at a time, so only the bad item fails', async () => {
    const w = recordingWrite((item) => item === 3);
    const commit = new GroupCommit(w.write, { maxParallel: 1 });
    const settled = Promise.allSettled([1, 2, 3, 4].map((item) => commit.submit(item)));
    w.release();
    const outcomes = await settled;
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(outcomes[3]).toEqual({ status: 'fulfilled', value: 40 });
    expect(w.batches).toEqual([[1], [2, 3, 4], [2], [3], [4]]);
  });

  it('with orderKey, an item whose key a batch in flight holds waits for that batch; other keys go on', async () => {
    const started: string[][] = [];
    const gates = new Map<string, () => void>();
    const commit = new GroupCommit(
      async (items: string[]) => {
        started.push(items);
        await new Promise<void>((resolve) => gates.set(items.join(','), resolve));
        return items;
      },
      { maxParallel: 2, orderKey: (item) => item.split(':')[0] },
    );
    const results = Promise.all(
      ['a:1', 'b:1', 'a:2', 'c:1', 'a:3', 'b:2'].map((item) => commit.submit(item)),
    );
    expect(started).toEqual([['a:1'], ['b:1']]);
    // b's batch ends: the next batch may not take a's items while a:1 is being written.
    gates.get('b:1')?.();
    await vi.waitFor(() => expect(started).toHaveLength(3));
    expect(started[2]).toEqual(['c:1', 'b:2']);
    gates.get('a:1')?.();
    await vi.waitFor(() => expect(started).toHaveLength(4));
    expect(started[3]).toEqual(['a:2', 'a:3']);
    gates.get('c:1,b:2')?.();
    gates.get('a:2,a:3')?.();
    expect(await results).toEqual(['a:1', 'b:1', 'a:2', 'c:1', 'a:3', 'b:2']);
  });

  it('with order, writes each batch sorted, and a failed one item by item in that order', async () => {
    const w = recordingWrite((item) => item === 3);
    const commit = new GroupCommit(w.write, { maxParallel: 1, order: (a, b) => a - b });
    const settled = Promise.allSettled([9, 4, 3, 1].map((item) => commit.submit(item)));
    w.release();
    const outcomes = await settled;
    // Each caller gets its own item's result.
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : 'failed'))).toEqual([
      90,
      40,
      'failed',
      10,
    ]);
    expect(w.batches).toEqual([[9], [1, 3, 4], [1], [3], [4]]);
  });

  it('roundsByKey puts no key twice in a round and keeps each key in order', () => {
    const items = ['a1', 'b1', 'a2', 'c1', 'a3', 'b2'];
    expect(roundsByKey(items, (item) => item[0] as string)).toEqual([
      ['a1', 'b1', 'c1'],
      ['a2', 'b2'],
      ['a3'],
    ]);
  });
});

describe.each(databaseTargets())('leased writes on %s', (target) => {
  let database: TestDatabase | undefined;
  afterEach(async () => {
    await database?.destroy();
    database = undefined;
  });

  /** A running run with one invoke item leased by `worker`. */
  async function leasedRun(db: TestDatabase['handle']['db'], worker: string) {
    const runId = randomUUID();
    await db.execute(
      sql`insert into executor_runs (id, function_id, event, status, created_at, started_at)
          values (${runId}, 'app-fn', '{"name":"x","data":{}}'::jsonb, 'running', now(), now())`,
    );
    const [item] = await selectRows<{ id: string }>(
      db,
      sql`insert into executor_queue (run_id, kind, step_id, available_at, leased_by, leased_until)
          values (${runId}, 'invoke', '', now(), ${worker}, now() + interval '1 minute') returning id`,
    );
    return { runId, itemId: Number(item?.id) };
  }

  it('stores checkpoints only under the lease, in order per run, and completes only leased runs', async () => {
    database = await createTestDatabase(target);
    const { db } = database.handle;
    const mine = await leasedRun(db, 'w1');
    const theirs = await leasedRun(db, 'w2');
    const now = Date.parse('2030-01-01T00:00:00Z');
    const written = await storeCheckpoints(
      db,
      [
        { ...mine, steps: [{ stepId: 's1', name: 'one', data: 1 }] },
        { ...theirs, steps: [{ stepId: 's1', name: 'one', data: 1 }] },
        { ...mine, steps: [{ stepId: 's2', name: 'two', data: { b: 2 } }] },
      ],
      'w1',
      now,
    );
    expect(written).toEqual([true, false, true]);
    const steps = await selectRows<{ run_id: string; step_id: string; seq: number; data: unknown }>(
      db,
      sql`select run_id, step_id, seq, data from executor_steps order by seq`,
    );
    expect(steps).toEqual([
      { run_id: mine.runId, step_id: 's1', seq: 1, data: 1 },
      { run_id: mine.runId, step_id: 's2', seq: 2, data: { b: 2 } },
    ]);

    const completed = await completeRuns(
      db,
      [
        { ...mine, output: 'done' },
        { ...theirs, output: 'stolen' },
      ],
      'w1',
      now,
    );
    expect(completed).toEqual([true, false]);
    const runs = await selectRows<{ id: string; status: string; output: unknown }>(
      db,
      sql`select id, status, output from executor_runs`,
    );
    expect(runs.find((run) => run.id === mine.runId)).toMatchObject({ status: 'completed', output: 'done' });
    expect(runs.find((run) => run.id === theirs.runId)).toMatchObject({ status: 'running', output: null });
    const queue = await selectRows<{ run_id: string }>(db, sql`select run_id from executor_queue`);
    expect(queue).toEqual([{ run_id: theirs.runId }]);
  });
});

describe.each(databaseTargets())('concurrent sends on %s', (target) => {
  let h: ExecutorHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('many concurrent sends share transactions: each event runs once, a repeated id once in all', async () => {
    const ran: number[] = [];
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          { id: 'count', triggers: [{ event: 'test/count' }] },
          async ({ event, step }) => {
            await step.run('note', () => ran.push(event.data.n as number));
            return event.data.n;
          },
        ),
      ],
    });
    const harness = h;
    const sends = Array.from({ length: 40 }, (_, n) => harness.send({ name: 'test/count', data: { n } }));
    // The same id sent three times at once (Telegram redelivering an update, say): stored once.
    const repeated = Array.from({ length: 3 }, () =>
      harness.send({ id: 'same-update', name: 'test/count', data: { n: 100 } }),
    );
    const ids = await Promise.all([...sends, ...repeated]);
    expect(new Set(ids.slice(40).flat())).toEqual(new Set(['same-update']));
    await h.settle();
    expect(ran.sort((a, b) => a - b)).toEqual([...Array.from({ length: 40 }, (_, n) => n), 100]);
    const runs = await h.runsOf(`${APP}-count`);
    expect(runs).toHaveLength(41);
    expect(runs.every((run) => run.status === 'completed')).toBe(true);
  });
});
