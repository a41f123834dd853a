import type { Actor } from '../lib/actor';
import type { JobsProbe } from '../lib/health';
import type { SendEvent } from '../lib/jobs';
import type { Logger } from '../lib/logger';
import type { Services } from '../lib/services';
import type { TelegramIngress } from '../lib/telegram/ingress';

export type { Actor };

/** The typed context every route and middleware sees. */
export interface AppEnv {
  Variables: {
    services: Services;
    requestId: string;
    /** The services' logger bound to this request's id, once made: read it with `loggerFor(c)`. */
    logger: Logger | undefined;
    jobsProbe: JobsProbe | undefined;
    actor: Actor;
    /** Sends events to the jobs engine (bound to `inngest.send` at boot). */
    sendEvent: SendEvent;
    /** Checks Telegram webhook calls, stores their updates and sends their events (lib/telegram/ingress.ts). */
    telegramIngress: TelegramIngress;
  };
}
