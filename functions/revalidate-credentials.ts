import { eq } from 'drizzle-orm';
import { agents } from '../lib/db/schema';
import { validateClaudeCredential, validateTelegramCredential } from '../lib/lifecycle/validate';
import { emitAgentEvent } from './emit-customer-event';
import type { FunctionDeps } from './index';

/**
 * Daily at 03:00 UTC: validates the credentials of every running agent again. A credential the
 * provider now refuses (a revoked token or key) becomes the agent's last error and an agent.error.
 */
export function revalidateCredentials({ inngest, services }: FunctionDeps) {
  return inngest.createFunction(
    {
      id: 'revalidate-credentials',
      triggers: [{ cron: '0 3 * * *' }],
      concurrency: { limit: 1 },
      retries: 1,
    },
    async ({ event, step }) => {
      const running = await step.run('list-running-agents', () =>
        services.db
          .select({ id: agents.id, customerId: agents.customerId })
          .from(agents)
          .where(eq(agents.status, 'running')),
      );
      let invalid = 0;
      for (const agent of running) {
        const problems = await step.run(`revalidate-${agent.id}`, async () => {
          const [telegram, claude] = await Promise.all([
            validateTelegramCredential(services, agent.id),
            validateClaudeCredential(services, agent.id),
          ]);
          // Unreachable is a provider outage, not the customer's problem: only refusals are reported.
          return [
            telegram?.status === 'invalid' ? `telegram: ${telegram.reason}` : null,
            claude?.status === 'invalid' ? `claude: ${claude.reason}` : null,
          ].filter((problem): problem is string => problem !== null);
        });
        if (problems.length === 0) continue;
        invalid += 1;
        await step.run(`report-${agent.id}`, async () => {
          const message = problems.join('; ');
          await services.db
            .update(agents)
            .set({ lastError: message, lastErrorCode: 'credential_invalid', lastErrorAt: new Date() })
            .where(eq(agents.id, agent.id));
          await emitAgentEvent(inngest, {
            customerId: agent.customerId,
            agentId: agent.id,
            type: 'agent.error',
            data: { code: 'credential_invalid', message },
            eventId: `${event.id ?? 'revalidate'}-${agent.id}-invalid`,
          });
        });
      }
      return { checked: running.length, invalid };
    },
  );
}
