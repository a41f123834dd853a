import { RetryAfterError } from 'inngest';
import { attemptDelivery, recordCustomerEvent } from '../lib/webhooks/deliveries';
import { customerEventEmitted, webhookDeliveryRequested } from './events';
import type { FunctionDeps } from './index';

/**
 * Delivers one customer event to the customer's webhook URL, retrying with backoff over about a
 * day (the schedule is lib/webhooks/backoff). One run at a time per customer, so a customer's
 * events arrive in the order they happened.
 */
export function deliverWebhook({ inngest, services }: FunctionDeps) {
  return inngest.createFunction(
    {
      id: 'deliver-webhook',
      triggers: [customerEventEmitted, webhookDeliveryRequested],
      concurrency: { key: 'event.data.customerId', limit: 1 },
      // Nine attempts in all: the first and eight retries (WEBHOOK_MAX_ATTEMPTS, checked in the test).
      retries: 8,
    },
    async ({ event, step, attempt }) => {
      let deliveryId: string | null;
      if (event.name === customerEventEmitted.name) {
        const input = customerEventEmitted.schema.parse(event.data);
        deliveryId = await step.run('record-delivery', async () => {
          const row = await recordCustomerEvent(
            services.db,
            {
              customerId: input.customerId,
              type: input.type,
              agentId: input.agentId,
              data: input.data as never,
              eventId: input.eventId,
              occurredAt: new Date(input.occurredAt),
            },
            { eventSentAt: new Date() },
          );
          return row?.id ?? null;
        });
      } else {
        deliveryId = webhookDeliveryRequested.schema.parse(event.data).deliveryId;
      }
      if (!deliveryId) return { delivered: false, reason: 'no webhook URL' };
      const id = deliveryId;

      const decision = await step.run('deliver', async () => {
        // Inngest's attempt counts from 0; the delivery log and the schedule count from 1.
        const result = await attemptDelivery(services.db, services.keyring, {
          deliveryId: id,
          attempt: attempt + 1,
          allowPrivate: services.config.webhooks.allowPrivateTargets,
          now: new Date(),
        });
        if (result.outcome === 'retry' && result.retryInMs !== undefined) {
          throw new RetryAfterError(result.error ?? 'webhook delivery failed', result.retryInMs);
        }
        return result;
      });
      return { deliveryId: id, outcome: decision.outcome };
    },
  );
}
