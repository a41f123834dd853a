import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { AppError } from '../../../lib/errors';
import { cancelRunById, getRun, listRuns } from '../../../lib/executor/admin';
import { commonErrors, IdParamsSchema, notFoundError, PageQuerySchema } from '../../../lib/schemas/common';
import type { AppEnv } from '../../env';
import { requireAdmin } from '../../middleware/auth';

const RunStatusSchema = z.enum(['queued', 'running', 'completed', 'failed', 'cancelled']);

export const RunSummarySchema = z
  .object({
    id: z.uuid().openapi({ example: '0b4f2d0e-8a3c-4a7e-9f0e-6f7f6f0b1c2d' }),
    functionId: z.string().openapi({
      description: 'Full function id: <app id>-<function id>',
      example: 'openclaw-platform-reply-to-message',
    }),
    status: RunStatusSchema,
    eventId: z.uuid().nullable().openapi({ description: 'The event that started the run' }),
    eventName: z.string().openapi({ example: 'agent/message.received' }),
    createdAt: z.string().openapi({ example: '2026-01-01T00:00:00.000Z' }),
    startedAt: z.string().nullable(),
    endedAt: z.string().nullable(),
  })
  .openapi('RunSummary');

const StepSchema = z
  .object({
    stepId: z.string().openapi({ description: 'Hashed step id, as the SDK reports it' }),
    name: z.string().nullable().openapi({ example: 'call-claude' }),
    status: z
      .string()
      .openapi({ description: 'completed, failed, running, retrying, sleeping, waiting or scheduled' }),
    op: z.string().openapi({ example: 'StepRun' }),
    attempts: z.number().int(),
    output: z.unknown(),
    error: z.unknown(),
    startedAt: z.string().nullable(),
    endedAt: z.string().nullable(),
    nextAttemptAt: z.string().nullable(),
  })
  .openapi('RunStep');

export const RunDetailSchema = RunSummarySchema.extend({
  event: z.record(z.string(), z.unknown()),
  output: z.unknown(),
  error: z.unknown(),
  steps: z.array(StepSchema),
}).openapi('RunDetail');

const listRoute = createRoute({
  operationId: 'listRuns',
  tags: ['Admin: jobs'],
  method: 'get',
  path: '/api/v1/admin/runs',
  summary: 'Function runs of the embedded jobs engine, newest first',
  middleware: [requireAdmin()] as const,
  request: {
    query: PageQuerySchema.extend({
      status: RunStatusSchema.optional(),
      functionId: z.string().min(1).optional(),
    }),
  },
  responses: {
    200: {
      description: 'A page of runs',
      content: {
        'application/json': {
          schema: z.object({ data: z.array(RunSummarySchema), nextCursor: z.string().nullable() }),
        },
      },
    },
    ...commonErrors,
  },
});

const getRoute = createRoute({
  operationId: 'getRun',
  tags: ['Admin: jobs'],
  method: 'get',
  path: '/api/v1/admin/runs/{id}',
  summary: 'A run with its step history',
  middleware: [requireAdmin()] as const,
  request: { params: IdParamsSchema },
  responses: {
    200: { description: 'The run', content: { 'application/json': { schema: RunDetailSchema } } },
    ...commonErrors,
    ...notFoundError,
  },
});

const cancelRoute = createRoute({
  operationId: 'cancelRun',
  tags: ['Admin: jobs'],
  method: 'post',
  path: '/api/v1/admin/runs/{id}/cancel',
  summary: 'Cancels a queued or running run (a run that ended is returned unchanged)',
  middleware: [requireAdmin()] as const,
  request: { params: IdParamsSchema },
  responses: {
    200: {
      description: 'The run after cancelling',
      content: { 'application/json': { schema: RunDetailSchema } },
    },
    ...commonErrors,
    ...notFoundError,
  },
});

export function registerAdminRuns(app: OpenAPIHono<AppEnv>) {
  app.openapi(listRoute, async (c) => {
    const query = c.req.valid('query');
    const page = await listRuns(c.get('services').db, query);
    return c.json({ data: page.runs, nextCursor: page.nextCursor }, 200);
  });
  app.openapi(getRoute, async (c) => {
    const { id } = c.req.valid('param');
    const run = await getRun(c.get('services').db, id);
    if (!run) throw new AppError('run_not_found', `No run with id ${id}`);
    return c.json(run, 200);
  });
  app.openapi(cancelRoute, async (c) => {
    const { id } = c.req.valid('param');
    return c.json(await cancelRunById(c.get('services').db, id, Date.now()), 200);
  });
}
