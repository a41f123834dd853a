import { eventType } from 'inngest';
import { z } from 'zod';
import { WebhookEventTypeSchema } from '../lib/webhooks/events';

/**
 * Every event the platform's functions consume, declared once; senders build them with
 * `evt.create(data)` (or send the same name and data shape), so payloads are checked when sent.
 */

/** A customer-facing event happened (agent started, message processed...): deliver it to the webhook. */
export const customerEventEmitted = eventType('customer/event.emitted', {
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
export const webhookDeliveryRequested = eventType('webhook/delivery.requested', {
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
export const telegramUpdateReceived = eventType('telegram/update.received', {
  schema: z.object({
    agentId: z.uuid(),
    customerId: z.uuid(),
    messageId: z.uuid(),
    chatId: z.number().int(),
    updateId: z.number().int(),
  }),
});
