import { expirePairingRequests } from '../lib/pairing';
import type { FunctionDeps } from './index';

/** Every 10 minutes: pending pairing codes past their hour become expired (lists also do it on read). */
export function expirePairingRequestsFunction({ inngest, services }: FunctionDeps) {
  return inngest.createFunction(
    {
      id: 'expire-pairing-requests',
      triggers: [{ cron: '*/10 * * * *' }],
      concurrency: { limit: 1 },
      retries: 1,
    },
    async ({ step }) =>
      step.run('mark-expired', async () => ({
        expired: await expirePairingRequests(services.db, new Date()),
      })),
  );
}
