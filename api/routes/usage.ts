import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { commonErrors, IdParamsSchema, notFoundError, Timestamp } from '../../lib/schemas/common';
import { getUsage } from '../../lib/usage';
import type { AppEnv } from '../env';
import { customerIdOf, requireAdmin, requireCustomer } from '../middleware/auth';

const TokensSchema = z
  .object({
    inputTokens: z.number().int().openapi({
      description: "Input not read from or written to the prompt cache (Anthropic's input_tokens)",
    }),
    outputTokens: z.number().int(),
    cacheReadTokens: z.number().int().openapi({ description: 'Input read from the prompt cache' }),
    cacheCreationTokens: z.number().int().openapi({ description: 'Input written to the prompt cache' }),
  })
  .openapi({ description: 'Claude tokens; the daily token budget counts all four' });
const CounterSchema = z.object({
  used: z
    .number()
    .int()
    .nullable()
    .openapi({ description: 'Null while the rate-limit store (Redis) is down' }),
  remaining: z.number().int().nullable(),
  resetAt: Timestamp,
});

export const UsageSchema = z
  .object({
    plan: z.enum(['free', 'pro', 'enterprise']),
    limits: z.object({ apiRequestsPerHour: z.number().int(), messagesPerDay: z.number().int() }),
    rateLimits: z.enum(['enforced', 'failing_open']).openapi({
      description: 'failing_open while Redis does not answer: nothing is limited, and the counts are null',
    }),
    apiRequests: CounterSchema.openapi({ description: 'This hour (sliding window)' }),
    messages: CounterSchema.openapi({ description: 'Today (UTC)' }),
    tokens: z.object({ today: TokensSchema, month: TokensSchema }),
    agents: z.array(
      z.object({
        agentId: z.uuid(),
        name: z.string(),
        deletedAt: Timestamp.nullable().openapi({
          description: "Set for an agent deleted this month: its tokens stay in the month's usage",
        }),
        today: TokensSchema,
        month: TokensSchema,
      }),
    ),
  })
  .openapi('Usage');

const usageResponse = { content: { 'application/json': { schema: z.object({ usage: UsageSchema }) } } };

const customerRoute = createRoute({
  operationId: 'getUsage',
  tags: ['Usage'],
  security: [{ customerKey: [] }],
  middleware: requireCustomer(),
  method: 'get',
  path: '/api/v1/usage',
  summary: 'API requests this hour, messages today, limits, and Claude tokens by agent',
  responses: { 200: { description: 'Usage', ...usageResponse }, ...commonErrors },
});

const adminRoute = createRoute({
  operationId: 'getCustomerUsage',
  tags: ['Admin: customers'],
  security: [{ adminKey: [] }],
  middleware: requireAdmin(),
  method: 'get',
  path: '/api/v1/admin/customers/{id}/usage',
  request: { params: IdParamsSchema },
  responses: { 200: { description: 'Usage', ...usageResponse }, ...commonErrors, ...notFoundError },
});

export function registerUsage(app: OpenAPIHono<AppEnv>) {
  app.openapi(customerRoute, async (c) => {
    const { db, limits } = c.get('services');
    return c.json({ usage: await getUsage(db, limits, customerIdOf(c.get('actor')), new Date()) }, 200);
  });
  app.openapi(adminRoute, async (c) => {
    const { db, limits } = c.get('services');
    return c.json({ usage: await getUsage(db, limits, c.req.valid('param').id, new Date()) }, 200);
  });
}
