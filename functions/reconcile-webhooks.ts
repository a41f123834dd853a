import { reconcileAgentWebhook, runningWebhookAgents } from '../lib/lifecycle/reconcile';
import { agentsWithLeftoverWebhook, removeLeftoverWebhook } from '../lib/lifecycle/remove-webhook';
import { sendUnsentStopEvents } from '../lib/lifecycle/stop-for-credential-change';
import { sendEventVia } from './client';
import { emitAgentEvent } from './emit-customer-event';
import type { FunctionDeps } from './index';

/**
 * Every 5 minutes: for each running agent, makes Telegram's webhook what it should be, and tells the
 * customer (agent.error) about delivery errors Telegram reports. First it sends the agent.stopped
 * events that a credential change's failed request left unsent; last it removes the webhooks that
 * stops made while Telegram was down left behind.
 */
export function reconcileWebhooks({ inngest, services }: FunctionDeps) {
  const sendEvent = sendEventVia(inngest);
  return inngest.createFunction(
    { id: 'reconcile-webhooks', triggers: [{ cron: '*/5 * * * *' }], concurrency: { limit: 1 }, retries: 1 },
    async ({ event, step }) => {
      const stopEventsSent = await step.run('send-unsent-stop-events', () =>
        sendUnsentStopEvents(services.db, sendEvent),
      );
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
      const leftovers = await step.run('list-leftover-webhooks', () => agentsWithLeftoverWebhook(services));
      let removed = 0;
      for (const agent of leftovers) {
        if (await step.run(`remove-leftover-${agent.id}`, () => removeLeftoverWebhook(services, agent.id))) {
          removed += 1;
        }
      }
      return { checked: running.length, repaired, stopEventsSent, leftoverWebhooksRemoved: removed };
    },
  );
}
