import { notifyPairingApproved } from '../lib/pairing/notify';
import { pairingApproved } from './events';
import type { FunctionDeps } from './index';
import { sendFailureError } from './send-failure';

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
        if (result.status === 'retry_after' || result.status === 'retryable' || result.status === 'failed') {
          throw sendFailureError(result);
        }
        return result;
      });
    },
  );
}
