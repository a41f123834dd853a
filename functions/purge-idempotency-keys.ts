import { purgeExpiredIdempotencyKeys } from '../lib/idempotency';
import type { FunctionDeps } from './index';

/** Hourly: Idempotency-Key uses past their 24 hours are deleted (a key's next use also purges). */
export function purgeIdempotencyKeysFunction({ inngest, services }: FunctionDeps) {
  return inngest.createFunction(
    {
      id: 'purge-idempotency-keys',
      triggers: [{ cron: '17 * * * *' }],
      concurrency: { limit: 1 },
      retries: 1,
    },
    async ({ step }) =>
      step.run('purge-expired', async () => ({ purged: await purgeExpiredIdempotencyKeys(services.db) })),
  );
}
