import { sql } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { createJobsRuntime } from '../../functions/runtime';
import { selectRows } from '../../lib/db/client';
import { databaseTargets } from '../support/db';
import { createExecutorHarness, type ExecutorHarness } from '../support/executor';
import { createTestServices } from '../support/services';
import { until } from '../support/until';

const APP = 'openclaw-platform';

/** The `web` process of a split deployment on the harness's database: its own client, no sync and no loop. */
async function webProcess(harness: ExecutorHarness) {
  const services = await createTestServices({
    database: harness.database.handle,
    env: { JOBS_ENGINE: 'embedded' },
  });
  return createJobsRuntime(services, { functions: () => [] });
}

describe.each(databaseTargets())('executor lifecycle on %s', (target) => {
  let h: ExecutorHarness | undefined;
  afterEach(async () => {
    await h?.executor.stop();
    await h?.close();
    h = undefined;
  });

  it('a web process says no worker runs the jobs once the every-minute cron ticks are overdue', async () => {
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction({ id: 'tick', triggers: [{ cron: '* * * * *' }] }, async () => 'ticked'),
      ],
    });
    const services = await createTestServices({
      database: h.database.handle,
      env: { JOBS_ENGINE: 'embedded' },
    });
    const web = createJobsRuntime(services, { functions: () => [], executor: { clock: h.clock } });
    try {
      expect(await web.health()).toEqual({ ok: true });
      // The tick came due a minute in; two minutes overdue is a busy worker, not a missing one.
      h.clock.advance(3 * 60_000);
      expect(await web.health()).toEqual({ ok: true });
      h.clock.advance(2 * 60_000);
      expect(await web.health()).toEqual({
        ok: false,
        error:
          'no worker has run the jobs for 240 s (a cron tick is overdue): is the worker process running?',
      });
      // A worker's pass fires the tick, and the web process sees the jobs run again.
      await h.drain();
      expect(await web.health()).toEqual({ ok: true });
    } finally {
      await services.redis.close();
    }
  });

  it('the loop wakes on an in-process send and runs the function; stop() lets in-flight steps finish', async () => {
    let stepStarted = false;
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction({ id: 'slow', triggers: [{ event: 'test/slow' }] }, async ({ step }) => {
          await step.run('slow-step', async () => {
            stepStarted = true;
            await new Promise((resolve) => setTimeout(resolve, 300));
            return 'finished';
          });
          return 'ok';
        }),
      ],
      executor: { pollIntervalMs: 60_000 },
    });
    await h.executor.start();
    expect(h.executor.health()).toEqual({ ok: true });
    await h.send({ name: 'test/slow', data: {} });
    await until(() => stepStarted, 'the step to start');
    await h.executor.stop();
    const [run] = await h.runsOf(`${APP}-slow`);
    expect(run?.status).toBe('completed');
  });

  it('stop() releases the lease of work that outlives the shutdown window', async () => {
    let stepStarted = false;
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction({ id: 'stuck', triggers: [{ event: 'test/stuck' }] }, async ({ step }) => {
          await step.run('never-ends', async () => {
            stepStarted = true;
            await new Promise(() => {});
          });
        }),
      ],
      executor: { shutdownTimeoutMs: 200 },
    });
    await h.executor.start();
    await h.send({ name: 'test/stuck', data: {} });
    await until(() => stepStarted, 'the step to start');
    const began = Date.now();
    await h.executor.stop();
    expect(Date.now() - began).toBeLessThan(5_000);
    const leased = await selectRows<{ leased_by: string | null }>(
      h.services.db,
      sql`select leased_by from executor_queue`,
    );
    expect(leased).toEqual([{ leased_by: null }]);
  });

  it("many events queued by a web process are fanned out by the worker, each run once, each key's runs in order", async () => {
    const seen: string[] = [];
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          {
            id: 'keyed',
            triggers: [{ event: 'test/keyed' }],
            concurrency: { key: 'event.data.chat', limit: 1 },
          },
          async ({ event, step }) => {
            await step.run('record', () => {
              seen.push(`${event.data.chat}:${event.data.n}`);
            });
          },
        ),
      ],
      executor: { concurrency: 16 },
    });
    const web = await webProcess(h);
    // Sent one after the other (their order is the queue's), then one more with a repeated id; the
    // worker claims many fan-out items at once and sets them off together.
    for (let batch = 0; batch < 3; batch += 1) {
      await web.inngest.send(
        Array.from({ length: 10 }, (_, i) => {
          const n = batch * 10 + i;
          return { name: 'test/keyed', id: `keyed-${n}`, data: { n, chat: `c${n % 3}` } };
        }),
      );
    }
    await web.inngest.send({ name: 'test/keyed', id: 'keyed-0', data: { n: 0, chat: 'c0' } });
    // A start blocked behind its key is retried a second later (on the harness's clock).
    const harness = h;
    const runsDone = async () =>
      (await harness.runsOf(`${APP}-keyed`)).filter((run) => run.status === 'completed');
    for (let second = 1; second <= 60 && (await runsDone()).length < 30; second += 1) {
      harness.clock.set(Date.now() + second * 1_000);
      await harness.drain();
    }
    const runs = await h.runsOf(`${APP}-keyed`);
    expect(runs).toHaveLength(30);
    expect(runs.map((run) => run.status)).toEqual(runs.map(() => 'completed'));
    expect([...seen].sort()).toEqual(Array.from({ length: 30 }, (_, n) => `c${n % 3}:${n}`).sort());
    for (const chat of ['c0', 'c1', 'c2']) {
      const order = seen
        .filter((entry) => entry.startsWith(`${chat}:`))
        .map((entry) => Number(entry.split(':')[1]));
      expect(order).toEqual([...order].sort((a, b) => a - b));
    }
  });

  it('an event sent from a process without a worker is stored and run by the worker', async () => {
    let ran = 0;
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction({ id: 'remote', triggers: [{ event: 'test/remote' }] }, async () => {
          ran += 1;
        }),
      ],
    });
    const web = await webProcess(h);
    await web.inngest.send({ name: 'test/remote', data: { from: 'web' } });
    const queued = await selectRows<{ kind: string }>(h.services.db, sql`select kind from executor_queue`);
    expect(queued).toEqual([{ kind: 'event' }]);
    expect(ran).toBe(0);
    h.clock.set(Date.now() + 1_000);
    await h.drain();
    expect(ran).toBe(1);
    const [run] = await h.runsOf(`${APP}-remote`);
    expect(run?.event.data).toEqual({ from: 'web' });
  });

  it("a statement with events, in a process without a worker, writes the caller's rows and the events they let through together or neither", async () => {
    const ran: unknown[] = [];
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction({ id: 'outbox', triggers: [{ event: 'test/outbox' }] }, async ({ event }) => {
          ran.push(event.data);
        }),
      ],
    });
    const { db } = h.services;
    await db.execute(sql`create table test_outbox_rows (id text primary key)`);
    const web = await webProcess(h);
    const statement = web.executor?.statement;
    if (!statement) throw new Error('the embedded engine has no executor');
    /** Inserts row `id` (a second time: nothing) and lets through the event `outbox-<id>`, adding to its data. */
    const insertRow = (id: string) => ({
      writes: sql`r as (insert into test_outbox_rows values (${id}) on conflict do nothing returning id)`,
      gate: sql`select 'outbox-' || id as external_id, jsonb_build_object('stored', id) as data from r`,
      select: sql`select id from r`,
    });
    const event = (id: string) => ({ name: 'test/outbox', id: `outbox-${id}`, data: { row: id } });

    expect(await statement(insertRow('kept'), [event('kept')])).toEqual([{ id: 'kept' }]);
    // The row is there already: the statement writes nothing, so the event it names is not stored.
    await db.execute(sql`insert into test_outbox_rows values ('earlier')`);
    expect(await statement(insertRow('earlier'), [event('earlier')])).toEqual([]);
    // One of the caller's writes fails: the statement's other rows and the event they let through are
    // not stored either.
    const failing = {
      writes: sql`r as (insert into test_outbox_rows values ('dropped') returning id),
        clash as (insert into test_outbox_rows values ('kept') returning id)`,
      gate: sql`select 'outbox-' || id as external_id, null::jsonb as data from r`,
      select: sql`select id from r`,
    };
    await expect(statement(failing, [event('dropped')])).rejects.toThrow();
    await expect(statement(insertRow('no-id'), [{ name: 'test/outbox', data: {} }])).rejects.toThrow('"id"');

    expect(await selectRows(db, sql`select id from test_outbox_rows order by id`)).toEqual([
      { id: 'earlier' },
      { id: 'kept' },
    ]);
    const events = await selectRows(db, sql`select external_id from executor_events order by external_id`);
    expect(events).toEqual([{ external_id: 'outbox-kept' }]);
    // No dedupe claim is left for the events not stored: a later event with one of those ids is taken.
    const claims = await selectRows(db, sql`select external_id from executor_event_ids order by external_id`);
    expect(claims).toEqual([{ external_id: 'outbox-kept' }]);
    h.clock.set(Date.now() + 1_000);
    await h.drain();
    expect(ran).toEqual([{ row: 'kept', stored: 'kept' }]);
  });
});
