import { sql } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { selectRows } from '../../lib/db/client';
import { databaseTargets } from '../support/db';
import { createExecutorHarness, type ExecutorHarness } from '../support/executor';

const APP = 'openclaw-platform';

describe.each(databaseTargets())('executor timers and flow control on %s', (target) => {
  let h: ExecutorHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  /** The concurrency keys runs wait on (executor_start_keys), in key order. */
  async function startKeys(): Promise<string[]> {
    const rows = await selectRows<{ key: string }>(
      h!.database.handle.db,
      sql`select key from executor_start_keys order by key, item_id`,
    );
    return rows.map((row) => row.key);
  }

  it('sleeps on the clock, not in real time', async () => {
    const seen: string[] = [];
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction({ id: 'sleeper', triggers: [{ event: 'test/sleep' }] }, async ({ step }) => {
          await step.run('before', () => seen.push('before'));
          await step.sleep('nap', '1h');
          await step.run('after', () => seen.push('after'));
          return 'rested';
        }),
      ],
    });
    await h.send({ name: 'test/sleep', data: {} });
    await h.drain();
    expect(seen).toEqual(['before']);
    const [sleeping] = await h.runsOf(`${APP}-sleeper`);
    expect(sleeping?.steps.map((s) => s.status)).toEqual(['completed', 'sleeping']);
    await h.advance(59 * 60_000);
    expect(seen).toEqual(['before']);
    await h.advance(60_000);
    expect(seen).toEqual(['before', 'after']);
    const [run] = await h.runsOf(`${APP}-sleeper`);
    expect(run?.status).toBe('completed');
  });

  it('waitForEvent resumes with the matching event, and times out with null', async () => {
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          { id: 'waiter', triggers: [{ event: 'test/wait.start' }] },
          async ({ step }) => {
            const approval = await step.waitForEvent('await-approval', {
              event: 'test/wait.approved',
              timeout: '10m',
              if: 'event.data.orderId == async.data.orderId',
            });
            return { approvedBy: (approval?.data as { by?: string } | undefined)?.by ?? null };
          },
        ),
      ],
    });
    await h.send([
      { name: 'test/wait.start', data: { orderId: 'o1' } },
      { name: 'test/wait.start', data: { orderId: 'o2' } },
    ]);
    await h.drain();
    await h.send({ name: 'test/wait.approved', data: { orderId: 'other', by: 'mallory' } });
    await h.send({ name: 'test/wait.approved', data: { orderId: 'o1', by: 'alice' } });
    await h.drain();
    let runs = await h.runsOf(`${APP}-waiter`);
    const byOrder = (order: string) =>
      runs.find((r) => (r.event.data as { orderId: string }).orderId === order);
    expect(byOrder('o1')).toMatchObject({ status: 'completed', output: { approvedBy: 'alice' } });
    expect(byOrder('o2')?.status).toBe('running');
    expect(byOrder('o2')?.steps[0]?.status).toBe('waiting');
    await h.advance(10 * 60_000);
    runs = await h.runsOf(`${APP}-waiter`);
    expect(byOrder('o2')).toMatchObject({ status: 'completed', output: { approvedBy: null } });
  });

  it('concurrency limit 1 per key serialises runs of one key and runs other keys in parallel', async () => {
    const log: string[] = [];
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          {
            id: 'per-chat',
            concurrency: { limit: 1, key: 'event.data.chatId' },
            triggers: [{ event: 'test/chat' }],
          },
          async ({ event, step }) => {
            const { chatId, n } = event.data as { chatId: string; n: number };
            await step.run('begin', () => log.push(`${chatId}${n}:begin`));
            await step.sleep('think', '1s');
            await step.run('end', () => log.push(`${chatId}${n}:end`));
          },
        ),
      ],
    });
    await h.send([
      { name: 'test/chat', data: { chatId: 'a', n: 1 } },
      { name: 'test/chat', data: { chatId: 'a', n: 2 } },
      { name: 'test/chat', data: { chatId: 'b', n: 1 } },
    ]);
    await h.drain();
    expect([...log].sort()).toEqual(['a1:begin', 'b1:begin']);
    // Only a2 waits, on its key; the runs that started no longer do.
    expect(await startKeys()).toEqual([`${APP}-per-chat:a`]);
    await h.settle();
    const a = log.filter((line) => line.startsWith('a'));
    expect(a).toEqual(['a1:begin', 'a1:end', 'a2:begin', 'a2:end']);
    const runs = await h.runsOf(`${APP}-per-chat`);
    expect(runs.map((r) => r.status)).toEqual(['completed', 'completed', 'completed']);
    expect(await startKeys()).toEqual([]);
  });

  it('a run that ends wakes the next one queued on its key at once, the clock standing still', async () => {
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          {
            id: 'one-at-a-time',
            concurrency: { limit: 1, key: 'event.data.k' },
            triggers: [{ event: 'test/one-at-a-time' }],
          },
          async ({ step }) => {
            await step.run('work', () => new Promise((resolve) => setTimeout(resolve, 50)));
          },
        ),
      ],
    });
    await h.send([1, 2, 3].map((n) => ({ name: 'test/one-at-a-time', data: { k: 'same', n } })));
    // No clock move: a blocked start would only be retried a second later.
    await h.drain();
    const runs = await h.runsOf(`${APP}-one-at-a-time`);
    expect(runs.map((r) => r.status)).toEqual(['completed', 'completed', 'completed']);
    expect(await startKeys()).toEqual([]);
  });

  it('cancelling a queued run that another waits behind lets that one start at once', async () => {
    const harness = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          {
            id: 'two-keys',
            concurrency: [
              { limit: 1, key: 'event.data.chat' },
              { limit: 1, key: 'event.data.pool' },
            ],
            triggers: [{ event: 'test/two-keys' }],
          },
          async ({ event, step }) => {
            if ((event.data as { hold?: boolean }).hold) await step.sleep('hold', '1h');
          },
        ),
      ],
    });
    h = harness;
    const send = (data: Record<string, unknown>) => harness.send({ name: 'test/two-keys', data });
    // The holder takes pool "busy"; the second waits for it; the third has its own pool free but
    // comes behind the second on their chat, first in, first out.
    await send({ chat: 'other', pool: 'busy', n: 1, hold: true });
    await harness.drain();
    await send({ chat: 'same', pool: 'busy', n: 2 });
    await harness.drain();
    await send({ chat: 'same', pool: 'free', n: 3 });
    await harness.drain();
    const runs = await harness.runsOf(`${APP}-two-keys`);
    const [holder, second, third] = [1, 2, 3].map((n) =>
      runs.find((run) => (run.event.data as { n: number }).n === n),
    );
    expect([holder?.status, second?.status, third?.status]).toEqual(['running', 'queued', 'queued']);

    expect(await harness.executor.cancel(second?.id as string)).toBe(true);
    // No clock move: the third would otherwise wait for its one-second re-check.
    await harness.drain();
    expect((await harness.run(third?.id as string)).status).toBe('completed');
  });

  it('concurrency limit 2 per key runs two of a key at once, in order, the third when a slot frees', async () => {
    const log: string[] = [];
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          {
            id: 'two-at-once',
            concurrency: { limit: 2, key: 'event.data.k' },
            triggers: [{ event: 'test/two' }],
          },
          async ({ event, step }) => {
            const { n } = event.data as { n: number };
            await step.run('begin', () => log.push(`${n}:begin`));
            await step.sleep('think', `${n}s`);
            await step.run('end', () => log.push(`${n}:end`));
          },
        ),
      ],
    });
    await h.send([1, 2, 3].map((n) => ({ name: 'test/two', data: { k: 'same', n } })));
    await h.drain();
    expect([...log].sort()).toEqual(['1:begin', '2:begin']);
    await h.advance(1_000);
    // Run 1 ended: its slot goes to run 3, the oldest one waiting.
    expect(log).toContain('1:end');
    expect(log).toContain('3:begin');
    await h.settle();
    const runs = await h.runsOf(`${APP}-two-at-once`);
    expect(runs.map((r) => r.status)).toEqual(['completed', 'completed', 'completed']);
    expect(log.indexOf('3:begin')).toBeGreaterThan(log.indexOf('1:end'));
  });

  it('throttle starts at most `limit` runs per period per key', async () => {
    const started: number[] = [];
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          {
            id: 'throttled',
            throttle: { limit: 2, period: '1m', key: 'event.data.customer' },
            triggers: [{ event: 'test/throttle' }],
          },
          async ({ event }) => {
            started.push((event.data as { n: number }).n);
          },
        ),
      ],
    });
    await h.send([1, 2, 3, 4, 5].map((n) => ({ name: 'test/throttle', data: { customer: 'c1', n } })));
    await h.send({ name: 'test/throttle', data: { customer: 'c2', n: 100 } });
    await h.drain();
    expect([...started].sort((x, y) => x - y)).toEqual([1, 2, 100]);
    await h.advance(59_000);
    expect(started).toHaveLength(3);
    await h.advance(1_000);
    expect(started).toHaveLength(5);
    await h.advance(60_000);
    expect(started).toHaveLength(6);
  });

  it('stores an event id once within 24 h and runs it once', async () => {
    let runs = 0;
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction({ id: 'deduped', triggers: [{ event: 'test/dedupe' }] }, async () => {
          runs += 1;
        }),
      ],
    });
    const first = await h.send({ id: 'evt-1', name: 'test/dedupe', data: {} });
    const second = await h.send({ id: 'evt-1', name: 'test/dedupe', data: {} });
    expect(second).toEqual(first);
    await h.drain();
    expect(runs).toBe(1);
    const { listEvents } = await import('../../lib/executor/admin');
    expect((await listEvents(h.services.db, { limit: 10 })).events).toHaveLength(1);
    h.clock.advance(24 * 60 * 60 * 1000 + 1);
    await h.send({ id: 'evt-1', name: 'test/dedupe', data: {} });
    await h.drain();
    expect(runs).toBe(2);
  });

  it('function-level idempotency runs one run per key', async () => {
    const seen: string[] = [];
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          { id: 'once-per-order', idempotency: 'event.data.orderId', triggers: [{ event: 'test/order' }] },
          async ({ event }) => {
            seen.push((event.data as { orderId: string }).orderId);
          },
        ),
      ],
    });
    await h.send([
      { name: 'test/order', data: { orderId: 'x' } },
      { name: 'test/order', data: { orderId: 'x' } },
      { name: 'test/order', data: { orderId: 'y' } },
    ]);
    await h.drain();
    expect(seen.sort()).toEqual(['x', 'y']);
  });

  it('fires a cron once per tick, even with two executors on the database', async () => {
    let ticks = 0;
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          { id: 'every-minute', triggers: [{ cron: '* * * * *' }] },
          async ({ event }) => {
            expect(event.name).toBe('inngest/scheduled.timer');
            ticks += 1;
          },
        ),
      ],
    });
    await h.drain();
    expect(ticks).toBe(0);
    await h.advance(60_000);
    expect(ticks).toBe(1);
    // A second worker on the same database and clock: the same tick is not fired twice.
    const second = await createExecutorHarness({
      target,
      database: h.database,
      functions: (inngest) => [
        inngest.createFunction({ id: 'every-minute', triggers: [{ cron: '* * * * *' }] }, async () => {
          ticks += 1;
        }),
      ],
    });
    second.clock.set(h.clock.now() + 60_000);
    h.clock.set(h.clock.now() + 60_000);
    await Promise.all([h.executor.processAvailable(), second.executor.processAvailable()]);
    await Promise.all([h.drain(), second.drain()]);
    expect(ticks).toBe(2);
    await second.close();
  });

  it('cancelOn cancels a waiting run when the matching event arrives, and announces it', async () => {
    const done: string[] = [];
    const cleaned: { runId: string; agentId: string; message: string }[] = [];
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          {
            id: 'clean-up',
            triggers: [
              { event: 'inngest/function.cancelled', if: `event.data.function_id == '${APP}-cancellable'` },
            ],
          },
          async ({ event, step }) => {
            const data = event.data as {
              run_id: string;
              error: { message: string };
              event: { data: { agentId: string } };
            };
            await step.run('note', () =>
              cleaned.push({
                runId: data.run_id,
                agentId: data.event.data.agentId,
                message: data.error.message,
              }),
            );
          },
        ),
        inngest.createFunction(
          {
            id: 'cancellable',
            cancelOn: [{ event: 'test/stop', if: 'event.data.agentId == async.data.agentId' }],
            triggers: [{ event: 'test/go' }],
          },
          async ({ event, step }) => {
            await step.sleep('wait-a-bit', '5m');
            await step.run('finish', () => done.push((event.data as { agentId: string }).agentId));
          },
        ),
      ],
    });
    await h.send([
      { name: 'test/go', data: { agentId: 'a' } },
      { name: 'test/go', data: { agentId: 'b' } },
    ]);
    await h.drain();
    await h.send({ name: 'test/stop', data: { agentId: 'a' } });
    await h.advance(5 * 60_000);
    expect(done).toEqual(['b']);
    const runs = await h.runsOf(`${APP}-cancellable`);
    expect(runs.map((r) => [(r.event.data as { agentId: string }).agentId, r.status]).sort()).toEqual([
      ['a', 'cancelled'],
      ['b', 'completed'],
    ]);
    const cancelled = runs.find((run) => run.status === 'cancelled');
    expect(cleaned).toEqual([{ runId: cancelled?.id, agentId: 'a', message: 'function cancelled' }]);
  });

  it('runs only functions whose trigger `if` matches', async () => {
    const seen: number[] = [];
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          {
            id: 'filtered',
            triggers: [{ event: 'test/filtered', if: "event.data.kind == 'vip' || event.data.n == 7" }],
          },
          async ({ event }) => {
            seen.push((event.data as { n: number }).n);
          },
        ),
      ],
    });
    await h.send([
      { name: 'test/filtered', data: { kind: 'vip', n: 1 } },
      { name: 'test/filtered', data: { kind: 'basic', n: 2 } },
      { name: 'test/filtered', data: { kind: 'basic', n: 7 } },
    ]);
    await h.drain();
    expect(seen.sort()).toEqual([1, 7]);
  });

  it('rejects an unsupported expression at sync with a clear error', async () => {
    await expect(
      createExecutorHarness({
        target,
        functions: (inngest) => [
          inngest.createFunction(
            {
              id: 'bad-expression',
              concurrency: { limit: 1, key: 'event.data.items.size() > 2' },
              triggers: [{ event: 'x' }],
            },
            async () => {},
          ),
        ],
      }),
    ).rejects.toThrow(/bad-expression.*concurrency key.*event\.data\.items\.size\(\) > 2/);
  });
});
