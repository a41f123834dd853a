import { sql } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { selectRows } from '../../lib/db/client';
import { enqueueFanOut, storeEvents } from '../../lib/executor/events';
import {
  expireStatement,
  pruneEventsStatement,
  pruneHistory,
  pruneRunsStatement,
} from '../../lib/executor/prune';
import { databaseTargets } from '../support/db';
import { createExecutorHarness, type ExecutorHarness } from '../support/executor';
import { explainPlan, joinsAbovePicks } from '../support/plans';
import { until } from '../support/until';

const APP = 'openclaw-platform';
const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;
const HISTORY = 7 * DAY;

describe.each(databaseTargets())('executor history pruning on %s', (target) => {
  let h: ExecutorHarness | undefined;
  afterEach(async () => {
    await h?.executor.stop();
    await h?.close();
    h = undefined;
  });

  const harness = (): ExecutorHarness => {
    if (!h) throw new Error('no harness');
    return h;
  };
  const count = async (from: 'executor_runs' | 'executor_events', id: string | undefined) => {
    const rows = await selectRows<{ n: number | string }>(
      harness().services.db,
      sql`select count(*) as n from ${sql.raw(from)} where id = ${id ?? null}::uuid`,
    );
    return Number(rows[0]?.n);
  };
  const stepsOf = async (runId: string | undefined) => {
    const rows = await selectRows<{ n: number | string }>(
      harness().services.db,
      sql`select count(*) as n from executor_steps where run_id = ${runId ?? null}::uuid`,
    );
    return Number(rows[0]?.n);
  };
  const eventIdOf = async (runId: string) => {
    const [row] = await selectRows<{ event_id: string }>(
      harness().services.db,
      sql`select event_id from executor_runs where id = ${runId}::uuid`,
    );
    return row?.event_id;
  };

  it('deletes a run ended before the history window with its steps and event; keeps a recent one', async () => {
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction({ id: 'two-steps', triggers: [{ event: 'test/prune' }] }, async ({ step }) => {
          await step.run('first', () => 1);
          await step.run('second', () => 2);
          return 'done';
        }),
      ],
      executor: { historyMs: HISTORY },
    });
    await h.send({ name: 'test/prune', data: { n: 'old' } });
    await h.settle();
    h.clock.advance(HISTORY + 1);
    await h.send({ name: 'test/prune', data: { n: 'recent' } });
    await h.settle();
    const [old, recent] = await h.runsOf(`${APP}-two-steps`);
    expect(old?.status).toBe('completed');
    expect(recent?.status).toBe('completed');
    const oldEvent = await eventIdOf(old?.id as string);
    const recentEvent = await eventIdOf(recent?.id as string);
    expect(await stepsOf(old?.id)).toBe(2);

    const pruned = await h.executor.prune();
    expect(pruned).toMatchObject({ runs: 1, steps: 2, events: 1 });
    expect(await count('executor_runs', old?.id)).toBe(0);
    expect(await stepsOf(old?.id)).toBe(0);
    expect(await count('executor_events', oldEvent)).toBe(0);
    expect(await count('executor_runs', recent?.id)).toBe(1);
    expect(await stepsOf(recent?.id)).toBe(2);
    expect(await count('executor_events', recentEvent)).toBe(1);

    expect(await h.executor.prune()).toEqual({ runs: 0, steps: 0, events: 0, eventIds: 0, idempotency: 0 });
  });

  it('keeps live runs older than the history (waiting, sleeping) with their steps and events', async () => {
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          { id: 'waiter', triggers: [{ event: 'test/wait.start' }] },
          async ({ step }) => {
            await step.run('before', () => 'before');
            const approval = await step.waitForEvent('await-approval', {
              event: 'test/wait.approved',
              timeout: '30d',
            });
            return approval ? 'approved' : 'timed out';
          },
        ),
        inngest.createFunction({ id: 'sleeper', triggers: [{ event: 'test/sleep' }] }, async ({ step }) => {
          await step.run('before', () => 'before');
          await step.sleep('nap', '30d');
          return 'rested';
        }),
      ],
      executor: { historyMs: HISTORY },
    });
    await h.send([
      { name: 'test/wait.start', data: {} },
      { name: 'test/sleep', data: {} },
    ]);
    await h.drain();
    const [waiting] = await h.runsOf(`${APP}-waiter`);
    const [sleeping] = await h.runsOf(`${APP}-sleeper`);
    expect(waiting?.status).toBe('running');
    expect(sleeping?.status).toBe('running');
    const live = [waiting?.id as string, sleeping?.id as string];
    const events = await Promise.all(live.map(eventIdOf));
    const steps = await Promise.all(live.map(stepsOf));
    expect(steps).toEqual([1, 1]);

    h.clock.advance(HISTORY + DAY);
    await h.drain();
    expect(await h.executor.prune()).toMatchObject({ runs: 0, steps: 0, events: 0 });
    for (const [index, runId] of live.entries()) {
      expect(await count('executor_runs', runId)).toBe(1);
      expect(await stepsOf(runId)).toBe(steps[index]);
      expect(await count('executor_events', events[index])).toBe(1);
    }

    // Both go on from where they were, and once ended and past the window they go too.
    await h.send({ name: 'test/wait.approved', data: {} });
    await h.settle();
    const [approved] = await h.runsOf(`${APP}-waiter`);
    const [rested] = await h.runsOf(`${APP}-sleeper`);
    expect(approved).toMatchObject({ status: 'completed', output: 'approved' });
    expect(rested).toMatchObject({ status: 'completed', output: 'rested' });
    h.clock.advance(HISTORY + 1);
    const pruned = await h.executor.prune();
    expect(pruned.runs).toBe(2);
    for (const [index, runId] of live.entries()) {
      expect(await count('executor_runs', runId)).toBe(0);
      expect(await stepsOf(runId)).toBe(0);
      expect(await count('executor_events', events[index])).toBe(0);
    }
  });

  it('keeps an old event while it waits for fan-out or a kept run was created from it', async () => {
    let ran = 0;
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction({ id: 'fanned', triggers: [{ event: 'test/fan' }] }, async () => {
          ran += 1;
        }),
      ],
      executor: { historyMs: HISTORY },
    });
    const db = h.services.db;
    const [stored] = await storeEvents(db, [{ name: 'test/fan', data: {} }], h.clock.now());
    await enqueueFanOut(db, [stored?.rowId as string], h.clock.now());
    h.clock.advance(HISTORY + DAY);
    expect((await h.executor.prune()).events).toBe(0);
    expect(await count('executor_events', stored?.rowId)).toBe(1);

    await h.drain();
    expect(ran).toBe(1);
    // Fanned out: its run ended just now and is kept, and so is the event the run was created from.
    expect(await h.executor.prune()).toMatchObject({ runs: 0, events: 0 });
    expect(await count('executor_events', stored?.rowId)).toBe(1);
    expect(await h.runsOf(`${APP}-fanned`)).toHaveLength(1);
    // Once the run is old enough to go, the event goes with it.
    h.clock.advance(HISTORY + DAY);
    expect(await h.executor.prune()).toMatchObject({ runs: 1, events: 1 });
    expect(await count('executor_events', stored?.rowId)).toBe(0);
  });

  it('deletes event ids and idempotency keys past their 24 h windows, keeps fresh ones', async () => {
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          { id: 'once-per-order', idempotency: 'event.data.orderId', triggers: [{ event: 'test/order' }] },
          async () => 'ok',
        ),
      ],
      executor: { historyMs: 30 * DAY },
    });
    await h.send({ id: 'evt-old', name: 'test/order', data: { orderId: 'old' } });
    await h.drain();
    h.clock.advance(DAY + 1);
    await h.send({ id: 'evt-fresh', name: 'test/order', data: { orderId: 'fresh' } });
    await h.drain();

    const pruned = await h.executor.prune();
    expect(pruned).toEqual({ runs: 0, steps: 0, events: 0, eventIds: 1, idempotency: 1 });
    const ids = await selectRows<{ external_id: string }>(
      h.services.db,
      sql`select external_id from executor_event_ids order by external_id`,
    );
    expect(ids.map((row) => row.external_id)).toEqual(['evt-fresh']);
    const keys = await selectRows<{ key: string }>(
      h.services.db,
      sql`select key from executor_idempotency order by key`,
    );
    expect(keys.map((row) => row.key)).toEqual([`${APP}-once-per-order:fresh`]);
    // The history window (30 days) keeps both runs and their events.
    expect(await h.runsOf(`${APP}-once-per-order`)).toHaveLength(2);
  });

  it('deletes at most batchSize rows per statement and maxBatches statements per call', async () => {
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction({ id: 'quick', triggers: [{ event: 'test/quick' }] }, async () => 'ok'),
      ],
    });
    await h.send([1, 2, 3, 4, 5].map((n) => ({ name: 'test/quick', data: { n } })));
    await h.drain();
    h.clock.advance(HISTORY + 1);
    const runs = async () => {
      const [row] = await selectRows<{ n: number | string }>(
        harness().services.db,
        sql`select count(*) as n from executor_runs`,
      );
      return Number(row?.n);
    };
    const prune = (maxBatches: number) =>
      pruneHistory(harness().services.db, {
        now: harness().clock.now(),
        historyMs: HISTORY,
        batchSize: 2,
        maxBatches,
      });
    expect(await runs()).toBe(5);
    expect(await prune(1)).toMatchObject({ runs: 2, events: 2 });
    expect(await runs()).toBe(3);
    expect(await prune(1)).toMatchObject({ runs: 2, events: 2 });
    expect(await runs()).toBe(1);
    expect(await prune(5)).toMatchObject({ runs: 1, events: 1 });
    expect(await runs()).toBe(0);
  });

  it('each batch picks its rows in one scan, never inside a join that runs it again for each row', async () => {
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction({ id: 'quick', triggers: [{ event: 'test/quick' }] }, async () => 'ok'),
      ],
    });
    await h.send(
      Array.from({ length: 20 }, (_, n) => ({ name: 'test/quick', id: `quick-${n}`, data: { n } })),
    );
    await h.drain();
    // Statistics of short tables, as autovacuum may have taken them before the history grew.
    await h.services.db.execute(sql`analyze`);
    const cutoff = new Date(h.clock.now() + DAY).toISOString();
    const statements = {
      runs: pruneRunsStatement(cutoff, 5),
      events: pruneEventsStatement(cutoff, 5),
      eventIds: expireStatement('executor_event_ids', 'external_id', 'seen_at', cutoff, 5),
      idempotency: expireStatement('executor_idempotency', 'key', 'created_at', cutoff, 5),
    };
    const joins: Record<string, string[][]> = {};
    for (const [name, statement] of Object.entries(statements)) {
      joins[name] = joinsAbovePicks(await explainPlan(h.services.db, statement));
    }
    expect(joins).toEqual({ runs: [[]], events: [[]], eventIds: [[]], idempotency: [[]] });
  });

  it('two prunes at once share the work: each row is deleted once', async () => {
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction({ id: 'quick', triggers: [{ event: 'test/quick' }] }, async () => 'ok'),
      ],
    });
    await h.send(Array.from({ length: 9 }, (_, n) => ({ name: 'test/quick', data: { n } })));
    await h.drain();
    h.clock.advance(HISTORY + 1);
    const options = { now: h.clock.now(), historyMs: HISTORY, batchSize: 2, maxBatches: 10 };
    const results = await Promise.all([
      pruneHistory(h.services.db, options),
      pruneHistory(h.services.db, options),
    ]);
    expect(results.reduce((sum, result) => sum + result.runs, 0)).toBe(9);
    expect(results.reduce((sum, result) => sum + result.events, 0)).toBe(9);
    const [left] = await selectRows<{ runs: number | string; events: number | string }>(
      h.services.db,
      sql`select (select count(*) from executor_runs) as runs, (select count(*) from executor_events) as events`,
    );
    expect({ runs: Number(left?.runs), events: Number(left?.events) }).toEqual({ runs: 0, events: 0 });
  });

  it('the loop prunes once an interval has passed since start, not at start', async () => {
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction({ id: 'quick', triggers: [{ event: 'test/quick' }] }, async () => 'ok'),
      ],
      executor: { historyMs: HISTORY, pruneIntervalMs: HOUR, pollIntervalMs: 60_000 },
    });
    await h.send({ name: 'test/quick', data: { n: 'old' } });
    await h.drain();
    const [old] = await h.runsOf(`${APP}-quick`);
    h.clock.advance(HISTORY + 1);

    await h.executor.start();
    // A send wakes the loop; its run completing proves the loop went round without pruning.
    await h.send({ name: 'test/quick', data: { n: 'second' } });
    await until(async () => (await h?.runsOf(`${APP}-quick`))?.[1]?.status === 'completed', 'the run');
    expect(await count('executor_runs', old?.id)).toBe(1);

    h.clock.advance(HOUR);
    await h.send({ name: 'test/quick', data: { n: 'third' } });
    await until(async () => (await count('executor_runs', old?.id)) === 0, 'the loop to prune');
    await h.executor.stop();
    expect(await h.runsOf(`${APP}-quick`)).toHaveLength(2);
  });
});
