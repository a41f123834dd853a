import type { Actor } from '../lib/actor';
import type { JobsProbe } from '../lib/health';
import type { SendEvent } from '../lib/jobs';
import type { Logger } from '../lib/logger';
import type { Services } from '../lib/services';
import type { TelegramIngress } from '../lib/telegram/ingress';
import type { TelegramWebhookAuth } from '../lib/telegram/webhook-auth';

export type { Actor };

/** The typed context every route and middleware sees. */
export interface AppEnv {
  Variables: {
    services: Services;
    requestId: string;
    /** The services' logger bound to this request's id. */
    logger: Logger;
    jobsProbe: JobsProbe | undefined;
    actor: Actor;
    /** Sends events to the jobs engine (bound to `inngest.send` at boot). */
    sendEvent: SendEvent;
    /** Stores Telegram updates and sends their events (lib/telegram/ingress.ts). */
    telegramIngress: TelegramIngress;
    /** Checks Telegram webhook calls' secret tokens (lib/telegram/webhook-auth.ts). */
    telegramWebhookAuth: TelegramWebhookAuth;
  };
}
