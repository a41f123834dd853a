import type { JobsProbe } from '../lib/health';
import type { Logger } from '../lib/logger';
import type { Services } from '../lib/services';

/** Who made the request (set by the auth middleware); the audit log and every tenant-scoped query read it. */
export type Actor =
  | { type: 'admin' }
  | { type: 'customer'; customerId: string; keyId: string; keyPrefix: string };

/** The typed context every route and middleware sees. */
export interface AppEnv {
  Variables: {
    services: Services;
    requestId: string;
    /** The services' logger bound to this request's id. */
    logger: Logger;
    jobsProbe: JobsProbe | undefined;
    actor: Actor;
  };
}
