import { OpenAPIHono } from '@hono/zod-openapi';
import { cors } from 'hono/cors';
import { requestId } from 'hono/request-id';
import type { JobsProbe } from '../lib/health';
import type { Services } from '../lib/services';
import type { AppEnv } from './env';
import { handleError, handleNotFound, validationHook } from './middleware/errors';
import { requestLogger } from './middleware/request-logger';
import { servicesMiddleware } from './middleware/services';
import { registerAdminEvents } from './routes/admin/events';
import { registerAdminRuns } from './routes/admin/runs';
import { registerHealth } from './routes/health';

export interface AppOptions {
  /** Reports the jobs engine's health; the engine that runs sets it. */
  jobsProbe?: JobsProbe;
  /** Mounts more routes (the Inngest serve handler, for instance) on the composed app. */
  extend?: (app: OpenAPIHono<AppEnv>) => void;
}

export function createApp(services: Services, options: AppOptions = {}) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.use(requestId());
  app.use(servicesMiddleware(services, options.jobsProbe));
  app.use(requestLogger({ quietPaths: ['/health'] }));
  if (services.config.corsOrigins.length > 0) {
    const origins = services.config.corsOrigins;
    app.use('/api/*', cors({ origin: origins.includes('*') ? '*' : origins, maxAge: 600 }));
  }
  app.onError(handleError);
  app.notFound(handleNotFound);

  registerHealth(app);
  registerAdminRuns(app);
  registerAdminEvents(app);
  options.extend?.(app);
  return app;
}

export type App = ReturnType<typeof createApp>;
