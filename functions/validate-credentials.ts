import { validateClaudeCredential, validateTelegramCredential } from '../lib/lifecycle/validate';
import { credentialsValidateRequested } from './events';
import type { FunctionDeps } from './index';

/** Checks both credentials of an agent with their providers and stores each result. */
export function validateCredentials({ inngest, services }: FunctionDeps) {
  return inngest.createFunction(
    {
      id: 'validate-credentials',
      triggers: [credentialsValidateRequested],
      concurrency: { key: 'event.data.agentId', limit: 1 },
      // "unreachable" is a stored answer the customer can act on (validate again), not a failure.
      retries: 0,
    },
    async ({ event, step }) => {
      const { agentId } = credentialsValidateRequested.schema.parse(event.data);
      const [telegram, claude] = await Promise.all([
        step.run('validate-telegram', () => validateTelegramCredential(services, agentId)),
        step.run('validate-claude', () => validateClaudeCredential(services, agentId)),
      ]);
      return { telegram: telegram?.status ?? null, claude: claude?.status ?? null };
    },
  );
}
