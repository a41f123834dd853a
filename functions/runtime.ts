import type { InngestFunction } from 'inngest';
import { serve } from 'inngest/hono';
import type { PartHealth } from '../lib/health';
import type { Services } from '../lib/services';
import { createInngestClient, type InngestClient } from './client';
import { createFunctions } from './index';

/** Path of the Inngest serve endpoint (what Inngest Cloud, a dev server or the executor calls). */
export const INNGEST_SERVE_PATH = '/api/inngest';

export interface JobsRuntime {
  inngest: InngestClient;
  functions: InngestFunction.Any[];
  /** The official serve() handler; mount it at INNGEST_SERVE_PATH for GET, PUT and POST. */
  serveHandler: ReturnType<typeof serve>;
  health(): Promise<PartHealth>;
  /** Starts the worker side (the loop that runs functions) in this process. */
  startWorker(): Promise<{ stop(): Promise<void> }>;
}

export function createJobsRuntime(services: Services): JobsRuntime {
  const inngest = createInngestClient(services.config, { logger: services.logger });
  const functions = createFunctions({ inngest, services });
  const serveHandler = serve({
    client: inngest,
    functions,
    servePath: INNGEST_SERVE_PATH,
    ...(services.config.jobs.serveOrigin ? { serveOrigin: services.config.jobs.serveOrigin } : {}),
  });
  return {
    inngest,
    functions,
    serveHandler,
    async health() {
      return { ok: true };
    },
    async startWorker() {
      const logger = services.logger.child({ component: 'worker' });
      logger.info({ engine: services.config.jobs.engine, functions: functions.length }, 'worker started');
      return {
        async stop() {
          logger.info('worker stopped');
        },
      };
    },
  };
}
