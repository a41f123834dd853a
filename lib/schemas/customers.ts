import { z } from '@hono/zod-openapi';
import {
  displayName,
  hasAField,
  IdParamsSchema,
  NO_FIELDS_MESSAGE,
  PageQuerySchema,
  Timestamp,
} from './common';

export const PLANS = ['free', 'pro', 'enterprise'] as const;
export const PlanSchema = z.enum(PLANS).openapi({ description: 'Billing plan', example: 'pro' });
export const CustomerStatusSchema = z.enum(['active', 'suspended']);

/** Agents a plan allows when the operator does not set maxAgents. */
export const PLAN_MAX_AGENTS: Record<(typeof PLANS)[number], number> = { free: 1, pro: 5, enterprise: 25 };

// What makes a webhook URL acceptable (scheme, host, no credentials) is checkWebhookUrl's, with
// its messages: the schema only bounds the text.
const WebhookUrl = z.string().max(2048).openapi({
  format: 'uri',
  description: 'https URL (http too outside production)',
  example: 'https://example.com/hooks/openclaw',
});

const LimitsSchema = z
  .object({
    apiRequestsPerHour: z.number().int().min(1).max(10_000_000).nullable().optional().openapi({
      description: "Overrides the plan's API requests per hour (null = the plan's)",
    }),
    messagesPerDay: z.number().int().min(1).max(10_000_000).nullable().optional().openapi({
      description: "Overrides the plan's Telegram messages per day (null = the plan's)",
    }),
  })
  .strict();

export const CustomerSchema = z
  .object({
    id: z.uuid(),
    name: z.string().openapi({ example: 'Acme Corp' }),
    email: z.string().nullable().openapi({ example: 'ops@acme.example' }),
    plan: PlanSchema,
    maxAgents: z.number().int(),
    status: CustomerStatusSchema,
    webhookUrl: z.string().nullable(),
    limits: z.object({
      apiRequestsPerHour: z.number().int().nullable(),
      messagesPerDay: z.number().int().nullable(),
    }),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .openapi('Customer');
export type Customer = z.infer<typeof CustomerSchema>;

export const CreateCustomerSchema = z
  .object({
    name: displayName(200).openapi({ example: 'Acme Corp' }),
    email: z.email().max(320).optional(),
    plan: PlanSchema.default('free'),
    maxAgents: z
      .number()
      .int()
      .min(0)
      .max(10_000)
      .optional()
      .openapi({ description: 'Default: by plan (1, 5, 25)' }),
    webhookUrl: WebhookUrl.optional(),
    limits: LimitsSchema.optional(),
  })
  .strict()
  .openapi('CreateCustomer');
export type CreateCustomerInput = z.infer<typeof CreateCustomerSchema>;

export const UpdateCustomerSchema = z
  .object({
    name: displayName(200),
    email: z.email().max(320).nullable(),
    plan: PlanSchema,
    maxAgents: z.number().int().min(0).max(10_000),
    status: CustomerStatusSchema,
    webhookUrl: WebhookUrl.nullable(),
    limits: LimitsSchema.refine(hasAField, {
      error: "send apiRequestsPerHour or messagesPerDay (null restores the plan's)",
    }),
  })
  .partial()
  .strict()
  .refine(hasAField, { error: NO_FIELDS_MESSAGE })
  .openapi('UpdateCustomer');
export type UpdateCustomerInput = z.infer<typeof UpdateCustomerSchema>;

export const CustomerWithKeySchema = z
  .object({
    customer: CustomerSchema,
    apiKey: z.string().openapi({ description: 'Shown once: store it now', example: 'oc_4fQ...' }),
  })
  .openapi('CustomerWithKey');

export const CreatedCustomerSchema = CustomerWithKeySchema.extend({
  webhookSecret: z.string().openapi({
    description:
      'Signs webhook deliveries (whsec_...). Shown once; rotate it with POST /api/v1/webhook/rotate-secret',
    example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  }),
}).openapi('CreatedCustomer');

export const ListCustomersQuerySchema = PageQuerySchema.extend({
  plan: PlanSchema.optional(),
  status: CustomerStatusSchema.optional(),
});

export { IdParamsSchema };
