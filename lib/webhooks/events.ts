import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';

/**
 * The events customers receive at their webhook URL. The body is exactly
 * `{ id, type, agentId, timestamp, data }`: `id` is unique per event and stays the same on every
 * retry (it is also the Standard Webhooks `webhook-id`), `timestamp` is when the event happened
 * (ISO 8601 UTC), `data` depends on `type`.
 */

export const AgentStartedDataSchema = z.strictObject({
  status: z.string().min(1).describe('The agent status after starting, e.g. "running".'),
});

export const AgentStoppedDataSchema = z.strictObject({
  reason: z.string().min(1).optional().describe('Why the agent stopped, when known.'),
});

export const AgentErrorDataSchema = z.strictObject({
  code: z.string().min(1).describe('A stable lower_snake error code, e.g. "telegram_token_revoked".'),
  message: z.string().min(1).describe('What went wrong, for a person.'),
});

export const MessageProcessedDataSchema = z.strictObject({
  chatId: z.number().int().describe('The Telegram chat id.'),
  inboundMessageId: z.uuid().describe('The platform id of the message that was answered.'),
  outboundMessageIds: z.array(z.uuid()).describe('Platform ids of the reply messages sent.'),
  inputTokens: z
    .number()
    .int()
    .nonnegative()
    .describe(
      "Claude's input tokens not read from or written to the prompt cache (Anthropic's input_tokens).",
    ),
  outputTokens: z.number().int().nonnegative(),
  cacheReadTokens: z.number().int().nonnegative().describe('Input tokens read from the prompt cache.'),
  cacheCreationTokens: z.number().int().nonnegative().describe('Input tokens written to the prompt cache.'),
  stopReason: z
    .string()
    .nullable()
    .describe(
      'Claude\'s stop_reason ("end_turn"; "max_tokens" when the answer was cut at the agent\'s maxTokens); null for an answer made without Claude.',
    ),
  latencyMs: z.number().int().nonnegative().describe('From receiving the message to the last reply sent.'),
});

export const PingDataSchema = z.strictObject({});

export const WEBHOOK_EVENT_DATA = {
  'agent.started': AgentStartedDataSchema,
  'agent.stopped': AgentStoppedDataSchema,
  'agent.error': AgentErrorDataSchema,
  'message.processed': MessageProcessedDataSchema,
  ping: PingDataSchema,
} as const;

export type WebhookEventType = keyof typeof WEBHOOK_EVENT_DATA;
export const WEBHOOK_EVENT_TYPES = Object.keys(WEBHOOK_EVENT_DATA) as WebhookEventType[];
export const WebhookEventTypeSchema = z.enum(
  WEBHOOK_EVENT_TYPES as [WebhookEventType, ...WebhookEventType[]],
);

export type WebhookEventData<T extends WebhookEventType> = z.infer<(typeof WEBHOOK_EVENT_DATA)[T]>;

function eventSchema<T extends WebhookEventType>(type: T) {
  return z.strictObject({
    id: z.string().min(1).describe('Unique per event; the same on every retry.'),
    type: z.literal(type),
    agentId: z.uuid(),
    timestamp: z.iso.datetime().describe('When the event happened, ISO 8601 UTC.'),
    data: WEBHOOK_EVENT_DATA[type],
  });
}

/** Any webhook event body, discriminated by `type` (for the OpenAPI document and receivers). */
export const WebhookEventSchema = z.discriminatedUnion('type', [
  eventSchema('agent.started'),
  eventSchema('agent.stopped'),
  eventSchema('agent.error'),
  eventSchema('message.processed'),
  eventSchema('ping'),
]);
export type WebhookEvent = z.infer<typeof WebhookEventSchema>;

export interface BuiltWebhookEvent<T extends WebhookEventType> {
  event: { id: string; type: T; agentId: string; timestamp: string; data: WebhookEventData<T> };
  /** The exact JSON sent and signed; store it and send the same bytes on every retry. */
  body: string;
}

/** What a Standard Webhooks `webhook-id` may hold here: it is signed as `${id}.${timestamp}.${body}`. */
const SAFE_WEBHOOK_ID = /^[A-Za-z0-9_-]{1,200}$/;

/**
 * The webhook id of a producer's idempotency key: the key itself when it is a safe `webhook-id`,
 * else `evt_` and a hash of it (keys made of an ISO time carry "." and ":"), the same every time,
 * so the producer's retries still land on one delivery.
 */
export function webhookEventIdFor(key: string): string {
  if (SAFE_WEBHOOK_ID.test(key)) return key;
  return `evt_${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;
}

/**
 * Builds and validates an event. `data` is checked against its type's schema (unknown fields are
 * refused, so nothing internal leaks to a customer by accident); throws a `ZodError` otherwise.
 */
export function buildWebhookEvent<T extends WebhookEventType>(
  type: T,
  agentId: string,
  data: WebhookEventData<T>,
  options: { id?: string; now: Date },
): BuiltWebhookEvent<T> {
  const event = {
    id: options.id === undefined ? randomUUID() : webhookEventIdFor(options.id),
    type,
    agentId,
    timestamp: options.now.toISOString(),
    data: WEBHOOK_EVENT_DATA[type].parse(data) as WebhookEventData<T>,
  };
  WebhookEventSchema.parse(event);
  return { event, body: JSON.stringify(event) };
}
