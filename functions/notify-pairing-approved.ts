import { notifyPairingApproved } from '../lib/pairing/notify';
import { pairingApproved } from './events';
import type { FunctionDeps } from './index';
import { sendFailureError } from './send-failure';

/**
 * Sends "you now have access" to a Telegram user whose pairing code the customer approved, once per
 * request: the approve route sends the event again when a client retries an approve (same id, so the
 * engine keeps one), and a copy that still gets through finds the recorded notice and sends nothing.
 * One run per request at a time, so two copies cannot both pass that check.
 */
export function notifyPairingApprovedFunction({ inngest, services }: FunctionDeps) {
  const deps = {
    db: services.db,
    keyring: services.keyring,
    telegramApiRoot: services.config.telegram.apiRoot,
  };
  return inngest.createFunction(
    {
      id: 'notify-pairing-approved',
      triggers: [pairingApproved],
      concurrency: { key: 'event.data.pairingRequestId', limit: 1 },
      retries: 4,
    },
    async ({ event, step }) => {
      const data = pairingApproved.schema.parse(event.data);
      return step.run('send-approval', async () => {
        const result = await notifyPairingApproved(deps, data);
        if (result.status === 'retry_after' || result.status === 'retryable' || result.status === 'failed') {
          throw sendFailureError(result);
        }
        return result;
      });
    },
  );
}
