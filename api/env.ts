import type { Actor } from '../lib/actor';
import type { JobsProbe } from '../lib/health';
import type { SendEvent } from '../lib/jobs';
import type { Logger } from '../lib/logger';
import type { Services } from '../lib/services';

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
  };
}
