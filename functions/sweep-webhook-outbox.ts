import { sweepWebhookOutbox } from '../lib/webhooks/outbox';
import { sendEventVia } from './client';
import type { FunctionDeps } from './index';

/**
 * Every minute: stored webhook deliveries whose event never reached the engine (an engine outage
 * longer than the storing step's retries, or a crash between the write and the send) get it now, so
 * no customer event is lost (the outbox pattern, as for Telegram updates).
 */
export function sweepWebhookOutboxFunction({ inngest, services }: FunctionDeps) {
  const sendEvent = sendEventVia(inngest);
  return inngest.createFunction(
    { id: 'sweep-webhook-outbox', triggers: [{ cron: '* * * * *' }], concurrency: { limit: 1 }, retries: 2 },
    async ({ event, step }) =>
      // The tick's own time (Inngest's cron event carries it), so a replayed tick sweeps as of then.
      step.run('resend-unsent-deliveries', () =>
        sweepWebhookOutbox(services.db, sendEvent, new Date(event.ts ?? Date.now())),
      ),
  );
}
