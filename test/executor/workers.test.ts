import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { getRun, listRuns } from '../../lib/executor/admin';
import { createTestDatabase } from '../support/db';
import { createExecutorHarness } from '../support/executor';
import { until } from '../support/until';

const APP = 'openclaw-platform';
const hasPostgres = Boolean(inject('postgresAdminUrl'));

describe.skipIf(!hasPostgres)('several executors on one real PostgreSQL', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  it('two executor instances share the work and never run a step twice', async () => {
    const database = await createTestDatabase('postgres');
    cleanup.push(() => database.destroy());
    const executions: string[] = [];
    const byWorker = { one: 0, two: 0 };
    const make = (worker: 'one' | 'two') =>
      createExecutorHarness({
        target: 'postgres',
        database,
        functions: (inngest) => [
          inngest.createFunction(
            { id: 'shared', triggers: [{ event: 'test/shared' }] },
            async ({ step, runId }) => {
              for (const name of ['a', 'b', 'c']) {
                await step.run(name, async () => {
                  executions.push(`${runId}:${name}`);
                  byWorker[worker] += 1;
                  await new Promise((resolve) => setTimeout(resolve, 2));
                });
              }
            },
          ),
        ],
        executor: { concurrency: 8 },
      });
    const one = await make('one');
    const two = await make('two');
    cleanup.push(
      () => one.close(),
      () => two.close(),
    );
    await one.send(Array.from({ length: 30 }, (_, n) => ({ name: 'test/shared', data: { n } })));
    for (let round = 0; round < 200; round += 1) {
      const [a, b] = await Promise.all([one.executor.processAvailable(8), two.executor.processAvailable(8)]);
      if (a + b === 0) break;
    }
    const runs = await listRuns(one.services.db, { functionId: `${APP}-shared`, limit: 100 });
    expect(runs.runs).toHaveLength(30);
    expect(runs.runs.every((run) => run.status === 'completed')).toBe(true);
    expect(executions).toHaveLength(90);
    expect(new Set(executions).size).toBe(90);
    expect(byWorker.one).toBeGreaterThan(0);
    expect(byWorker.two).toBeGreaterThan(0);
  });

  it("another process's event wakes an idle worker at once (LISTEN/NOTIFY), not at its next poll", async () => {
    const database = await createTestDatabase('postgres');
    cleanup.push(() => database.destroy());
    const functions = (inngest: Parameters<Parameters<typeof createExecutorHarness>[0]['functions']>[0]) => [
      inngest.createFunction({ id: 'woken', triggers: [{ event: 'test/woken' }] }, async ({ step }) => {
        await step.run('only', () => 'done');
      }),
    ];
    // The web process: stores events, runs no loop. The worker: a loop that polls once a minute.
    const web = await createExecutorHarness({ target: 'postgres', database, functions });
    const worker = await createExecutorHarness({
      target: 'postgres',
      database,
      functions,
      executor: { pollIntervalMs: 60_000 },
    });
    cleanup.push(
      () => web.close(),
      () => worker.close(),
    );
    await worker.executor.start();
    cleanup.push(() => worker.executor.stop());
    await new Promise((resolve) => setTimeout(resolve, 300));

    await web.send({ name: 'test/woken', data: {} });
    let status: string | undefined;
    for (let attempt = 0; attempt < 100 && status !== 'completed'; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const runs = await listRuns(web.services.db, { functionId: `${APP}-woken`, limit: 1 });
      status = runs.runs[0]?.status;
    }
    // Within 10 s, where polling alone would take a minute (without NOTIFY this fails).
    expect(status).toBe('completed');
  });

  it('a worker killed with SIGKILL mid-run: the run completes after restart, completed steps not re-run', async () => {
    const database = await createTestDatabase('postgres');
    cleanup.push(() => database.destroy());
    const dir = mkdtempSync(join(tmpdir(), 'executor-kill-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const stepLog = join(dir, 'steps.log');
    const marker = join(dir, 'hung');
    const script = fileURLToPath(new URL('./fixtures/kill-worker.ts', import.meta.url));
    const children: ChildProcess[] = [];
    cleanup.push(async () => {
      for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    });
    const startWorker = () => {
      const child = spawn(process.execPath, ['--import', 'tsx', script], {
        env: { ...process.env, DATABASE_URL: database.url, STEP_LOG: stepLog, HANG_MARKER: marker },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      children.push(child);
      return child;
    };
    const lines = () => (existsSync(stepLog) ? readFileSync(stepLog, 'utf8').trim().split('\n') : []);
    const waitFor = (what: string, check: () => boolean | Promise<boolean>) =>
      until(check, what, { timeoutMs: 25_000, detail: () => `log:\n${lines().join('\n')}` });

    const first = startWorker();
    await waitFor('the first worker', () => lines().some((line) => line.startsWith(`ready ${first.pid}`)));
    // The sender is another process's client: a harness that only sends (its loop never runs).
    const sender = await createExecutorHarness({
      target: 'postgres',
      database,
      functions: (inngest) => [
        inngest.createFunction({ id: 'survivor', triggers: [{ event: 'test/survive' }] }, async () => {
          throw new Error('the sender never runs functions');
        }),
      ],
    });
    cleanup.push(() => sender.close());
    // The workers run on the real clock.
    sender.clock.set(Date.now());
    await sender.send({ name: 'test/survive', data: {} });
    await waitFor('step-2 to hang', () => existsSync(marker));
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));

    const second = startWorker();
    const [run] = (await listRuns(sender.services.db, { functionId: `${APP}-survivor`, limit: 1 })).runs;
    expect(run).toBeDefined();
    await waitFor(
      'the run to complete',
      async () => (await getRun(sender.services.db, run?.id as string))?.status === 'completed',
    );
    const detail = await getRun(sender.services.db, run?.id as string);
    expect(detail?.output).toBe('survived');
    const log = lines();
    expect(log.filter((line) => line.startsWith('step-1'))).toEqual([`step-1 ${run?.id} ${first.pid}`]);
    expect(log.filter((line) => line.startsWith('step-2'))).toEqual([
      `step-2 ${run?.id} ${first.pid}`,
      `step-2 ${run?.id} ${second.pid}`,
    ]);
    expect(log.filter((line) => line.startsWith('step-3'))).toEqual([`step-3 ${run?.id} ${second.pid}`]);
    second.kill('SIGTERM');
    await new Promise((resolve) => second.once('exit', resolve));
  });
});
