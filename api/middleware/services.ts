import { createMiddleware } from 'hono/factory';
import { AppError } from '../../lib/errors';
import type { JobsProbe } from '../../lib/health';
import { type SendEvent, type StatementWithEvents, unavailableOnFailure } from '../../lib/jobs';
import type { Services } from '../../lib/services';
import { TelegramIngress } from '../../lib/telegram/ingress';
import type { AppEnv } from '../env';

/**
 * Hands the boot-time services to every handler (`loggerFor(c)` binds their logger to the request id).
 *
 * @example app.use(servicesMiddleware(services, { sendEvent }))
 */
export function servicesMiddleware(
  services: Services,
  jobs: {
    probe?: JobsProbe | undefined;
    sendEvent?: SendEvent | undefined;
    eventsStatement?: StatementWithEvents | undefined;
  } = {},
) {
  const { probe: jobsProbe, sendEvent, eventsStatement } = jobs;
  const send: SendEvent =
    sendEvent ??
    (async () => {
      throw new AppError('service_unavailable', 'The jobs engine is not connected to this process');
    });
  // One each per app, so concurrent webhook calls share their group commits.
  const telegramIngress = new TelegramIngress({
    db: services.db,
    keyring: services.keyring,
    sendEvent: send,
    logger: services.logger,
    eventsStatement,
  });
  // The ingress keeps the engine's own error (its outbox re-sends); handlers answer 503 on one.
  const handlerSend = unavailableOnFailure(send);
  return createMiddleware<AppEnv>(async function injectServices(c, next) {
    c.set('services', services);
    c.set('telegramIngress', telegramIngress);
    c.set('jobsProbe', jobsProbe);
    c.set('sendEvent', handlerSend);
    await next();
  });
}
