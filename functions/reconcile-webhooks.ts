import { reconcileAgentWebhook, runningWebhookAgents } from '../lib/lifecycle/reconcile';
import { emitAgentEvent } from './emit-customer-event';
import type { FunctionDeps } from './index';

/**
 * Every 5 minutes: for each running agent, makes Telegram's webhook what it should be, and tells the
 * customer (agent.error) about delivery errors Telegram reports.
 */
export function reconcileWebhooks({ inngest, services }: FunctionDeps) {
  return inngest.createFunction(
    { id: 'reconcile-webhooks', triggers: [{ cron: '*/5 * * * *' }], concurrency: { limit: 1 }, retries: 1 },
    async ({ event, step }) => {
      const running = await step.run('list-running-agents', () => runningWebhookAgents(services));
      let repaired = 0;
      for (const agent of running) {
        const outcome = await step.run(`reconcile-${agent.id}`, () =>
          reconcileAgentWebhook(services, agent.id),
        );
        if (!outcome) continue;
        if (outcome.repaired) repaired += 1;
        const error = outcome.deliveryError;
        if (error) {
          await step.run(`emit-delivery-error-${agent.id}`, () =>
            emitAgentEvent(inngest, {
              customerId: agent.customerId,
              agentId: agent.id,
              type: 'agent.error',
              data: { code: 'telegram_delivery_error', message: error.message },
              eventId: `${event.id ?? 'reconcile'}-${agent.id}-delivery-error`,
            }),
          );
        }
      }
      return { checked: running.length, repaired };
    },
  );
}
