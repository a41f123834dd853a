import { sweepTelegramOutbox } from '../lib/telegram/outbox';
import { sendEventVia } from './client';
import type { FunctionDeps } from './index';

/**
 * Every minute: stored Telegram updates whose event never reached the engine (a crash or an engine
 * outage between the write and the send) get it now, so no message is lost (the outbox pattern).
 */
export function sweepTelegramOutboxFunction({ inngest, services }: FunctionDeps) {
  const sendEvent = sendEventVia(inngest);
  return inngest.createFunction(
    { id: 'sweep-telegram-outbox', triggers: [{ cron: '* * * * *' }], concurrency: { limit: 1 }, retries: 2 },
    async ({ event, step }) =>
      // The tick's own time (Inngest's cron event carries it), so a replayed tick sweeps as of then.
      step.run('resend-unsent-updates', () =>
        sweepTelegramOutbox(services.db, sendEvent, new Date(event.ts ?? Date.now())),
      ),
  );
}
