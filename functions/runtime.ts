import { Hono } from 'hono';
import type { InngestFunction } from 'inngest';
import { connect } from 'inngest/connect';
import { serve } from 'inngest/hono';
import { EmbeddedExecutor, type ExecutorOptions } from '../lib/executor/executor';
import { SERVE_ORIGIN } from '../lib/executor/invoke';
import type { PartHealth } from '../lib/health';
import type { Services } from '../lib/services';
import { startTelegramPolling } from '../lib/telegram/poller';
import { createInngestClient, type InngestClient, sendEventVia } from './client';
import { connectOptions } from './connect-options';
import { createFunctions, type FunctionDeps } from './index';

/** How overdue the every-minute cron ticks may be before the web process says no worker runs the jobs. */
const WORKERS_LAG_MS = 3 * 60_000;

/** Path of the Inngest serve endpoint (what Inngest Cloud, a dev server or the executor calls). */
export const INNGEST_SERVE_PATH = '/api/inngest';

export interface JobsRuntime {
  inngest: InngestClient;
  functions: InngestFunction.Any[];
  /** The official serve() handler; mount it at INNGEST_SERVE_PATH for GET, PUT and POST. */
  serveHandler: ReturnType<typeof serve>;
  /** The embedded engine (JOBS_ENGINE=embedded), also when this process runs no worker loop. */
  executor: EmbeddedExecutor | undefined;
  health(): Promise<PartHealth>;
  /** Starts the worker side (the loop that runs functions) in this process. */
  startWorker(): Promise<{ stop(): Promise<void> }>;
}

export interface JobsRuntimeOptions {
  /** The functions to serve; the platform's own list by default (tests pass their own). */
  functions?: (deps: FunctionDeps) => InngestFunction.Any[];
  /** Embedded executor tuning (clock, lease, poll interval...). */
  executor?: Partial<Omit<ExecutorOptions, 'db' | 'logger' | 'servePath'>>;
}

export function createJobsRuntime(services: Services, options: JobsRuntimeOptions = {}): JobsRuntime {
  const { config } = services;
  const embedded = config.jobs.engine === 'embedded';
  const executor = embedded
    ? new EmbeddedExecutor({
        db: services.db,
        logger: services.logger,
        servePath: INNGEST_SERVE_PATH,
        concurrency: config.jobs.concurrency,
        historyMs: config.jobs.historyDays * 24 * 60 * 60 * 1000,
        // PostgreSQL: the web process's events wake the worker at once (LISTEN/NOTIFY), not at its next poll.
        notify: services.database.driver === 'pg',
        listen: services.database.listen?.bind(services.database),
        ...options.executor,
      })
    : undefined;
  const inngest = createInngestClient(config, {
    logger: services.logger,
    // Embedded: events and the SDK's sync reach the executor in-process, no socket.
    ...(executor ? { fetch: executor.fetch as typeof fetch, baseUrl: SERVE_ORIGIN } : {}),
  });
  const functions = (options.functions ?? createFunctions)({ inngest, services });
  const serveHandler = serve({
    client: inngest,
    functions,
    servePath: INNGEST_SERVE_PATH,
    ...(config.jobs.serveOrigin && !executor ? { serveOrigin: config.jobs.serveOrigin } : {}),
  });
  if (executor) {
    // The executor calls the same serve() handler Inngest would, through a Hono app's fetch.
    const serveApp = new Hono().on(['GET', 'PUT', 'POST'], INNGEST_SERVE_PATH, (c) => serveHandler(c));
    executor.attach((request) => serveApp.fetch(request));
  }
  // A process that runs no jobs (--web-only) reports whether some worker does; one that runs them, its own.
  let workerHealth: () => PartHealth | Promise<PartHealth> = executor
    ? () => executor.workersHealth(WORKERS_LAG_MS)
    : () => ({ ok: true });

  return {
    inngest,
    functions,
    serveHandler,
    executor,
    async health() {
      return workerHealth();
    },
    async startWorker() {
      const logger = services.logger.child({ component: 'worker' });
      // Without a public webhook URL, running agents are served by long polling from the worker.
      const poller = config.telegram.webhookBaseUrl
        ? undefined
        : startTelegramPolling(services, sendEventVia(inngest), { eventsStatement: executor?.statement });
      if (executor) {
        await executor.start();
        workerHealth = () => executor.health();
        return {
          stop: async () => {
            await poller?.stop();
            await executor.stop();
          },
        };
      }
      // Inngest mode: a connect() worker holds an outbound WebSocket to Inngest (no HTTP timeout).
      const connection = await connect({
        apps: [{ client: inngest, functions }],
        handleShutdownSignals: [],
        ...connectOptions(),
      });
      workerHealth = () =>
        connection.state === 'CLOSED'
          ? { ok: false, error: 'Inngest connect worker is closed' }
          : { ok: true };
      logger.info({ engine: 'inngest', functions: functions.length }, 'connect worker started');
      return {
        stop: async () => {
          await poller?.stop();
          await connection.close();
        },
      };
    },
  };
}
