/**
 * Benchmark of the embedded executor: N runs of a 3-step no-op function.
 * Prints one line per database: runs/s when flooded, and p50/p99 event-to-completion latency when
 * offered a steady 50 runs/s. Real PostgreSQL is used when BENCH_DATABASE_URL (default
 * postgres://postgres@127.0.0.1:5432/postgres) answers; a scratch database is created and dropped.
 * With two workers, the second is a process of its own (this file, forked), as a second worker
 * dyno would be: two executors in one process would share one thread.
 *
 *   npm run bench:executor            # BENCH_WARMUP=1000 BENCH_RUNS=5000 BENCH_RATE=50 BENCH_SECONDS=10
 *                                     # BENCH_CASES=pglite,postgres:1,postgres:2 (each its own process)
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { createJobsRuntime, type JobsRuntime } from '../functions/runtime';
import { parseConfig } from '../lib/config';
import { createDatabase, type DatabaseHandle, selectRows } from '../lib/db/client';
import { migrateDatabase } from '../lib/db/migrate';
import { withDevSecrets } from '../lib/dev-secrets';
import { usePlainProcessEnv } from '../lib/plain-env';
import { createServices, type Services } from '../lib/services';
import { percentile } from './support/percentile';
import { procfileEnv } from './support/process-env';
import { ADMIN_URL, scratchPostgres } from './support/scratch-postgres';

// As a Procfile process sees its environment, and as the platform's entry points do (lib/boot.ts).
process.env = procfileEnv();
usePlainProcessEnv();

const RUNS = Number(process.env.BENCH_RUNS ?? 5000);
/** Runs completed before the clock starts, so the figures are of a warm process (JIT, pools). */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 1000);
const RATE = Number(process.env.BENCH_RATE ?? 50);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);

async function makeWorker(database: DatabaseHandle): Promise<{ services: Services; runtime: JobsRuntime }> {
  const config = withDevSecrets(
    parseConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      JOBS_ENGINE: 'embedded',
      ENCRYPTION_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
      ADMIN_API_KEY: 'oc_admin_bench_0123456789abcdefghijklmnopqrstuvwxyz',
    }),
  ).config;
  const services = await createServices(config, { database });
  const runtime = createJobsRuntime(services, {
    functions: ({ inngest }) => [
      inngest.createFunction(
        { id: 'bench-noop', retries: 0, triggers: [{ event: 'bench/noop' }] },
        async ({ step }) => {
          await step.run('one', () => 1);
          await step.run('two', () => 2);
          await step.run('three', () => 3);
          return 'done';
        },
      ),
    ],
    executor: { pollIntervalMs: 100 },
  });
  await runtime.startWorker();
  return { services, runtime };
}

/** A worker process of its own on `url` (this file, forked); resolves once it has synced and runs. */
async function forkWorker(url: string): Promise<ChildProcess> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    // The node flags this process runs with (package.json's bench:executor), as the first worker has.
    execArgv: process.execArgv,
    env: { ...process.env, BENCH_WORKER_URL: url },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('worker process did not start in 60 s')), 60_000);
    child.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => reject(new Error(`worker process exited (${code})`)));
  });
  return child;
}

if (process.env.BENCH_WORKER_URL) {
  // The forked second worker: runs until the parent kills it.
  await makeWorker(await createDatabase({ url: process.env.BENCH_WORKER_URL, poolSize: 10 }));
  process.send?.('ready');
  await new Promise(() => {});
}

async function waitForCompleted(database: DatabaseHandle, total: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [row] = await selectRows<{ n: number }>(
      database.db,
      sql`select count(*)::int as n from executor_runs where status = 'completed'`,
    );
    if ((row?.n ?? 0) >= total) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`runs did not complete within ${timeoutMs} ms`);
}

async function latencies(database: DatabaseHandle, since: number): Promise<number[]> {
  const rows = await selectRows<{ sent: string; ended: string | Date }>(
    database.db,
    sql`select event->'data'->>'sentAt' as sent, ended_at as ended from executor_runs
        where status = 'completed' and (event->'data'->>'sentAt')::bigint >= ${since}`,
  );
  return rows.map((row) => new Date(row.ended).getTime() - Number(row.sent)).sort((a, b) => a - b);
}

async function bench(
  label: string,
  database: DatabaseHandle,
  workers: number,
  url?: string,
): Promise<string> {
  await migrateDatabase(database);
  const started = [await makeWorker(database)];
  const others = url ? await Promise.all(Array.from({ length: workers - 1 }, () => forkWorker(url))) : [];
  const { runtime } = started[0] as { runtime: JobsRuntime };
  let invocations = 0;

  const flood = async (count: number) => {
    for (let sent = 0; sent < count; sent += 50) {
      const batch = Math.min(50, count - sent);
      await runtime.inngest.send(
        Array.from({ length: batch }, (_, i) => ({
          name: 'bench/noop',
          data: { n: sent + i, sentAt: Date.now() },
        })),
      );
    }
  };
  // 0. Warm-up, not measured.
  await flood(WARMUP);
  await waitForCompleted(database, WARMUP, 120_000);
  for (const worker of started) {
    if (worker.runtime.executor)
      Object.assign(worker.runtime.executor.stats, { invocations: 0, checkpoints: 0 });
  }

  // 1. Flood: RUNS events sent in batches, time until all complete.
  const t0 = Date.now();
  await flood(RUNS);
  await waitForCompleted(database, WARMUP + RUNS, 300_000);
  const floodRate = RUNS / ((Date.now() - t0) / 1000);
  const sum = (pick: (stats: { invocations: number; checkpoints: number }) => number) =>
    started.reduce(
      (total, worker) => total + (worker.runtime.executor ? pick(worker.runtime.executor.stats) : 0),
      0,
    );
  invocations = sum((stats) => stats.invocations) / RUNS;
  const checkpoints = sum((stats) => stats.checkpoints) / RUNS;

  // 2. Steady: RATE runs/s for SECONDS, event-to-completion latency.
  const steadyStart = Date.now();
  const total = RATE * SECONDS;
  for (let i = 0; i < total; i += 1) {
    const due = steadyStart + (i * 1000) / RATE;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    void runtime.inngest.send({ name: 'bench/noop', data: { n: i, sentAt: Date.now() } });
  }
  await waitForCompleted(database, WARMUP + RUNS + total, 120_000);
  const lat = await latencies(database, steadyStart);
  for (const worker of started) await worker.runtime.executor?.stop();
  for (const child of others) child.kill('SIGKILL');
  // The forked worker's counters are not ours to read: the per-run counts are for one process.
  const shape =
    workers > 1
      ? `${workers} worker processes): ${floodRate.toFixed(0)} runs/s (${RUNS} runs of 3 steps); `
      : `1 worker): ${floodRate.toFixed(0)} runs/s (${RUNS} runs of 3 steps, ` +
        `${invocations.toFixed(1)} invocations + ${checkpoints.toFixed(1)} checkpoints/run); `;
  return (
    `executor ${label} (${shape}at ${RATE} runs/s offered: p50 ${percentile(lat, 50)} ms, ` +
    `p99 ${percentile(lat, 99)} ms event-to-completion (${lat.length} runs)`
  );
}

/** One case in this process: `pglite`, or `postgres:<workers>`. Prints its result line. */
async function runCase(name: string): Promise<string> {
  if (name === 'pglite') {
    const database = await createDatabase({ pgliteDir: 'memory://' });
    try {
      return await bench('pglite', database, 1);
    } finally {
      await database.close();
    }
  }
  const workers = Number(name.split(':')[1] ?? 1);
  const scratch = await scratchPostgres();
  if (!scratch) return `executor postgres: skipped (${ADMIN_URL} not reachable)`;
  const database = await createDatabase({ url: scratch.url, poolSize: 10 });
  try {
    return await bench('postgres', database, workers, scratch.url);
  } finally {
    await database.close();
    await scratch.drop();
  }
}

if (process.env.BENCH_CASE) {
  process.stdout.write(`${await runCase(process.env.BENCH_CASE)}\n`);
  process.exit(0);
}
// Each case in a fresh process of its own (same node flags): one case's heap, JIT state and
// PGlite's memory do not weigh on the next one's figures.
for (const name of (process.env.BENCH_CASES ?? 'pglite,postgres:1,postgres:2').split(',')) {
  const child = fork(fileURLToPath(import.meta.url), [], {
    execArgv: process.execArgv,
    env: { ...process.env, BENCH_CASE: name },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) process.stdout.write(`executor ${name}: the case exited with ${code}\n`);
}
process.exit(0);
