import { NonRetriableError, RetryAfterError } from 'inngest';
import { notifyPairingApproved } from '../lib/pairing/notify';
import { pairingApproved } from './events';
import type { FunctionDeps } from './index';

/** Sends "you now have access" to a Telegram user whose pairing code the customer approved. */
export function notifyPairingApprovedFunction({ inngest, services }: FunctionDeps) {
  const deps = {
    db: services.db,
    keyring: services.keyring,
    telegramApiRoot: services.config.telegram.apiRoot,
  };
  return inngest.createFunction(
    { id: 'notify-pairing-approved', triggers: [pairingApproved], retries: 4 },
    async ({ event, step }) => {
      const data = pairingApproved.schema.parse(event.data);
      return step.run('send-approval', async () => {
        const result = await notifyPairingApproved(deps, data);
        switch (result.status) {
          case 'retry_after':
            throw new RetryAfterError('Telegram asked to slow down (429)', result.seconds * 1000);
          case 'retryable':
            throw new Error(result.description);
          case 'failed':
            throw new NonRetriableError(result.description);
          default:
            return result;
        }
      });
    },
  );
}
