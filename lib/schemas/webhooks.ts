import { z } from '@hono/zod-openapi';
import { PageQuerySchema, Timestamp } from './common';

export const WebhookSettingsSchema = z
  .object({
    url: z.string().nullable().openapi({ example: 'https://example.com/hooks/openclaw' }),
    secretConfigured: z.boolean(),
    previousSecretExpiresAt: Timestamp.nullable().openapi({
      description: 'Until then the secret before the last rotation also signs (webhook-signature lists both)',
    }),
  })
  .openapi('WebhookSettings');

export const SetWebhookSchema = z
  .object({
    url: z.string().max(2048).nullable().openapi({ description: 'https URL, or null to stop deliveries' }),
  })
  .strict()
  .openapi('SetWebhook');

export const RotateWebhookSecretSchema = z
  .object({
    gracePeriodHours: z.number().min(0).max(168).default(24).openapi({
      description: 'How long the old secret keeps signing alongside the new one (0-168, default 24)',
    }),
  })
  .strict();

const AttemptSchema = z.object({
  attempt: z.number().int(),
  statusCode: z.number().int().nullable(),
  durationMs: z.number().int(),
  responseExcerpt: z.string().nullable(),
  error: z.string().nullable(),
  nextAttemptAt: Timestamp.nullable(),
  createdAt: Timestamp,
});

export const DeliverySchema = z
  .object({
    id: z.uuid(),
    eventId: z.string(),
    eventType: z.string().openapi({ example: 'agent.started' }),
    agentId: z.string().nullable(),
    url: z.string().nullable(),
    status: z.enum(['pending', 'retrying', 'succeeded', 'failed']),
    attempts: z.number().int(),
    lastStatusCode: z.number().int().nullable(),
    lastDurationMs: z.number().int().nullable(),
    lastResponseExcerpt: z.string().nullable(),
    lastError: z.string().nullable(),
    nextAttemptAt: Timestamp.nullable(),
    deliveredAt: Timestamp.nullable(),
    redeliveryOf: z.string().nullable(),
    payload: z.record(z.string(), z.unknown()),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .openapi('WebhookDelivery');

export const DeliveryDetailSchema = DeliverySchema.extend({ attemptLog: z.array(AttemptSchema) }).openapi(
  'WebhookDeliveryDetail',
);

export const ListDeliveriesQuerySchema = PageQuerySchema.extend({
  status: z.enum(['pending', 'retrying', 'succeeded', 'failed']).optional(),
});
