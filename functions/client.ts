import { Inngest } from 'inngest';
import type { Config } from '../lib/config';
import type { SendEvent } from '../lib/jobs';
import type { Logger } from '../lib/logger';

export interface InngestClientOptions {
  logger?: Logger;
  /** The embedded executor hands the client a fetch that reaches it in-process. */
  fetch?: typeof fetch;
  baseUrl?: string;
}

/** One Inngest client per process, configured for the engine in use. */
export function createInngestClient(
  config: Pick<Config, 'jobs' | 'isProduction'>,
  options: InngestClientOptions = {},
) {
  const { jobs } = config;
  return new Inngest({
    id: jobs.appId,
    ...(jobs.eventKey ? { eventKey: jobs.eventKey } : {}),
    ...(jobs.signingKey ? { signingKey: jobs.signingKey } : {}),
    ...(jobs.signingKeyFallback ? { signingKeyFallback: jobs.signingKeyFallback } : {}),
    ...((options.baseUrl ?? jobs.baseUrl) ? { baseUrl: options.baseUrl ?? jobs.baseUrl } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.logger ? { logger: options.logger.child({ component: 'inngest' }) } : {}),
    // Cloud mode only with a signing key; embedded and self-hosted dev servers skip signatures.
    isDev: jobs.engine === 'embedded' || !jobs.signingKey,
  });
}

export type InngestClient = ReturnType<typeof createInngestClient>;

/** The client's `send` as lib's `SendEvent`: lib code sends events without knowing the engine. */
export function sendEventVia(inngest: InngestClient): SendEvent {
  return async (events) => {
    await inngest.send(events);
  };
}
