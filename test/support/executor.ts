import type { InngestFunction } from 'inngest';
import type { InngestClient } from '../../functions/client';
import { createJobsRuntime, type JobsRuntime } from '../../functions/runtime';
import { getRun, type RunDetail } from '../../lib/executor/admin';
import type { EmbeddedExecutor, ExecutorOptions } from '../../lib/executor/executor';
import type { Clock } from '../../lib/executor/types';
import type { Logger } from '../../lib/logger';
import type { Services } from '../../lib/services';
import { createTestDatabase, type DatabaseTarget, type TestDatabase } from './db';
import { createTestServices } from './services';

/** A clock tests move by hand: sleeps, waits, retries and crons come due without real waiting. */
export class ManualClock implements Clock {
  constructor(private current = Date.parse('2030-01-01T00:00:00.000Z')) {}
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.current += ms;
  }
  set(ms: number): void {
    this.current = ms;
  }
}

export interface ExecutorHarness {
  database: TestDatabase;
  services: Services;
  runtime: JobsRuntime;
  inngest: InngestClient;
  executor: EmbeddedExecutor;
  clock: ManualClock;
  /** Sends through the real Inngest client (`inngest.send`), which reaches the executor in-process. */
  send(events: Parameters<InngestClient['send']>[0]): Promise<string[]>;
  /** Runs everything available at the current clock time until nothing is left (bounded). */
  drain(maxRounds?: number): Promise<number>;
  /** Moves the clock forward, then drains. */
  advance(ms: number): Promise<void>;
  /** Drains, and jumps the clock to each next due item (timers, retries) until no work is left. */
  settle(maxJumps?: number): Promise<void>;
  run(runId: string): Promise<RunDetail>;
  /** Run ids of a function (full id `<app>-<fn>`), oldest first. */
  runsOf(functionId: string): Promise<RunDetail[]>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  target: DatabaseTarget;
  functions: (inngest: InngestClient, services: Services) => InngestFunction.Any[];
  /** An existing database (several executors on one database); created fresh otherwise. */
  database?: TestDatabase;
  env?: Record<string, string | undefined>;
  executor?: Partial<Omit<ExecutorOptions, 'db' | 'logger' | 'servePath'>>;
  /** The services' logger (the engine's and the Inngest client's too), e.g. `captureLogger().logger`. */
  logger?: Logger;
}

/**
 * A database + services + Inngest client + functions + embedded executor with a manual clock, so a
 * function can be tested end to end through the real engine and the real serve() handler.
 *
 * @example
 * const h = await createExecutorHarness({ target: 'pglite', functions: (inngest) => [myFn(inngest)] });
 * await h.send({ name: 'agent/message.received', data: { ... } });
 * await h.drain();
 */
export async function createExecutorHarness(options: HarnessOptions): Promise<ExecutorHarness> {
  const ownsDatabase = !options.database;
  const database = options.database ?? (await createTestDatabase(options.target));
  const services = await createTestServices({
    database: database.handle,
    env: { JOBS_ENGINE: 'embedded', ...options.env },
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const clock = new ManualClock();
  const runtime = createJobsRuntime(services, {
    functions: ({ inngest }) => options.functions(inngest, services),
    executor: { clock, random: () => 0.5, backoffBaseMs: 1_000, ...options.executor },
  });
  const executor = runtime.executor as EmbeddedExecutor;
  const release = async () => {
    await services.redis.close();
    if (ownsDatabase) await database.destroy();
  };
  try {
    await executor.sync();
  } catch (error) {
    // A sync the test expects to fail must not leave its database behind on the server.
    await release();
    throw error;
  }

  const drain = async (maxRounds = 500) => {
    let total = 0;
    for (let round = 0; round < maxRounds; round += 1) {
      const ran = await executor.processAvailable();
      total += ran;
      if (ran === 0) return total;
    }
    throw new Error(`drain: still busy after ${maxRounds} rounds`);
  };

  const harness: ExecutorHarness = {
    database,
    services,
    runtime,
    inngest: runtime.inngest,
    executor,
    clock,
    async send(events) {
      const { ids } = await runtime.inngest.send(events);
      return ids;
    },
    drain,
    async advance(ms) {
      clock.advance(ms);
      await drain();
    },
    async settle(maxJumps = 100) {
      await drain();
      for (let jump = 0; jump < maxJumps; jump += 1) {
        const due = await executor.nextDueAt();
        if (due === undefined) return;
        if (due > clock.now()) clock.set(due);
        await drain();
      }
    },
    run: async (runId) => {
      const detail = await getRun(services.db, runId);
      if (!detail) throw new Error(`run ${runId} not found`);
      return detail;
    },
    async runsOf(functionId) {
      const { listRuns } = await import('../../lib/executor/admin');
      const page = await listRuns(services.db, { functionId, limit: 100 });
      const details: RunDetail[] = [];
      for (const run of page.runs.reverse()) details.push(await harness.run(run.id));
      return details;
    },
    close: release,
  };
  return harness;
}
