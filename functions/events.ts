import { eventType } from 'inngest';
import { z } from 'zod';
import { PAIRING_APPROVED } from '../lib/pairing/notify';
import { UPDATE_RECEIVED } from '../lib/telegram/ingress';
import { WebhookEventTypeSchema } from '../lib/webhooks/events';
import { CUSTOMER_EVENT_EMITTED, DELIVERY_REQUESTED } from '../lib/webhooks/settings';

/**
 * Every event the platform's functions consume, declared once; senders build them with
 * `evt.create(data)` (or send the same name and data shape), so payloads are checked when sent.
 */

/** A customer-facing event happened (agent started, message processed...): deliver it to the webhook. */
export const customerEventEmitted = eventType(CUSTOMER_EVENT_EMITTED, {
  schema: z.object({
    customerId: z.uuid(),
    type: WebhookEventTypeSchema,
    agentId: z.uuid(),
    data: z.record(z.string(), z.unknown()),
    /** The webhook event id (the Standard Webhooks `webhook-id`); also this event's dedupe id. */
    eventId: z.string().min(1),
    occurredAt: z.iso.datetime(),
  }),
});

/** A stored delivery should be (re)sent: redeliveries and test pings. */
export const webhookDeliveryRequested = eventType(DELIVERY_REQUESTED, {
  schema: z.object({ customerId: z.uuid(), deliveryId: z.uuid() }),
});

/** A customer asked to validate an agent's credentials. */
export const credentialsValidateRequested = eventType('agent/credentials.validate-requested', {
  schema: z.object({ agentId: z.uuid(), customerId: z.uuid() }),
});

/** An agent went stopped -> starting: register its webhook (or polling), then mark it running. */
export const agentStartRequested = eventType('agent/start.requested', {
  schema: z.object({ agentId: z.uuid(), customerId: z.uuid() }),
});

/** An agent went -> stopping: remove its webhook, then mark it stopped. */
export const agentStopRequested = eventType('agent/stop.requested', {
  schema: z.object({ agentId: z.uuid(), customerId: z.uuid(), reason: z.string().optional() }),
});

/** A Telegram update was stored (webhook or polling): the reply pipeline answers it. */
export const telegramUpdateReceived = eventType(UPDATE_RECEIVED, {
  schema: z.object({
    agentId: z.uuid(),
    customerId: z.uuid(),
    messageId: z.uuid(),
    chatId: z.number().int(),
    updateId: z.number().int(),
    /** `<agentId>:<chatId>`: the reply function's concurrency key. */
    chatKey: z.string().min(1),
  }),
});

/** A customer approved a pairing code: tell the Telegram user they now have access. */
export const pairingApproved = eventType(PAIRING_APPROVED, {
  schema: z.object({ agentId: z.uuid(), customerId: z.uuid(), pairingRequestId: z.uuid() }),
});

/**
 * One start or stop of an agent at a time, across both functions (scope `env` shares the key):
 * a stop's deleteWebhook and a start's setWebhook racing at Telegram could leave a stopped agent
 * with a webhook, or a running one without.
 */
export const AGENT_LIFECYCLE_CONCURRENCY = {
  key: '"agent-lifecycle-" + event.data.agentId',
  scope: 'env',
  limit: 1,
} as const;
