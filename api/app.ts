import { OpenAPIHono } from '@hono/zod-openapi';
import { cors } from 'hono/cors';
import { requestId } from 'hono/request-id';
import type { JobsProbe } from '../lib/health';
import type { SendEvent, StatementWithEvents } from '../lib/jobs';
import type { Services } from '../lib/services';
import type { AppEnv } from './env';
import { allowedMethods } from './middleware/allowed-methods';
import { bodyGuard } from './middleware/body-guard';
import { handleError, notFoundHandler, validationHook } from './middleware/errors';
import { queryGuard } from './middleware/query-guard';
import { requestLogger } from './middleware/request-logger';
import { routesWithout } from './middleware/route-parts';
import { servicesMiddleware } from './middleware/services';
import { registerAdminAuditLog } from './routes/admin/audit-log';
import { registerAdminCustomers } from './routes/admin/customers';
import { registerAdminEvents } from './routes/admin/events';
import { registerAdminRuns } from './routes/admin/runs';
import { registerAgentRoutes } from './routes/agents';
import { registerAuditLog } from './routes/audit-log';
import { registerHealth } from './routes/health';
import { registerOpenApi } from './routes/openapi';
import { registerTelegramWebhook } from './routes/telegram';
import { registerUsage } from './routes/usage';
import { registerWebhook } from './routes/webhook';

export interface AppOptions {
  /** Reports the jobs engine's health; the engine that runs sets it. */
  jobsProbe?: JobsProbe;
  /** Sends events to the jobs engine; routes that start work need it. */
  sendEvent?: SendEvent;
  /** The embedded engine's one-statement send: Telegram ingress stores each update with its event. */
  eventsStatement?: StatementWithEvents | undefined;
  /** Mounts more routes (the Inngest serve handler, for instance) on the composed app. */
  extend?: (app: OpenAPIHono<AppEnv>) => void;
}

export function createApp(services: Services, options: AppOptions = {}) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.use(requestId());
  app.use(
    servicesMiddleware(services, {
      probe: options.jobsProbe,
      sendEvent: options.sendEvent,
      eventsStatement: options.eventsStatement,
    }),
  );
  app.use(requestLogger({ quietPaths: ['/health'], debugPrefixes: ['/telegram/'] }));
  if (services.config.corsOrigins.length > 0) {
    const origins = services.config.corsOrigins;
    app.use(
      '/api/*',
      cors({
        origin: origins.includes('*') ? '*' : origins,
        maxAge: 600,
        // A browser shows a script only the CORS-safelisted response headers unless told otherwise.
        exposeHeaders: ['ETag', 'X-Request-Id', 'Retry-After', 'Allow', 'Idempotent-Replayed'],
      }),
    );
  }
  const definitions = () => app.openAPIRegistry.definitions;
  app.use('/api/v1/*', bodyGuard({ maxBytes: 64 * 1024, takesNoBody: routesWithout('body', definitions) }));
  app.use('/api/v1/*', queryGuard(routesWithout('query', definitions)));
  app.onError(handleError);
  app.notFound(notFoundHandler(allowedMethods(() => app.routes)));

  registerHealth(app);
  registerAdminCustomers(app);
  registerAdminAuditLog(app);
  registerAgentRoutes(app);
  registerAuditLog(app);
  registerWebhook(app);
  registerUsage(app);
  registerTelegramWebhook(app);
  registerAdminRuns(app);
  registerAdminEvents(app);
  options.extend?.(app);
  registerOpenApi(app);
  return app;
}

export type App = ReturnType<typeof createApp>;
