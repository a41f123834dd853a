import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { AppError } from '../../../lib/errors';
import { getEvent, listEvents, replayEvent } from '../../../lib/executor/admin';
import { commonErrors, IdParamsSchema, notFoundError, PageQuerySchema } from '../../../lib/schemas/common';
import type { AppEnv } from '../../env';
import { requireAdmin } from '../../middleware/auth';
import { RunSummarySchema } from './runs';

const EventSchema = z
  .object({
    id: z.uuid().openapi({ description: 'Stored event id (use it to replay)' }),
    externalId: z
      .string()
      .openapi({ description: 'The id the sender gave (deduplicated for 24 h), or the stored id' }),
    name: z.string().openapi({ example: 'agent/message.received' }),
    data: z.unknown(),
    ts: z.number().int().openapi({ description: 'Event time, ms since the epoch' }),
    receivedAt: z.string(),
    replayOf: z.uuid().nullable().openapi({ description: 'The event this one replays' }),
  })
  .openapi('JobEvent');

const listRoute = createRoute({
  operationId: 'listEvents',
  tags: ['Admin: jobs'],
  method: 'get',
  path: '/api/v1/admin/events',
  summary: 'Events received by the embedded jobs engine, newest first',
  middleware: [requireAdmin()] as const,
  request: {
    query: PageQuerySchema.extend({
      name: z.string().min(1).optional(),
    }),
  },
  responses: {
    200: {
      description: 'A page of events',
      content: {
        'application/json': {
          schema: z.object({ data: z.array(EventSchema), nextCursor: z.string().nullable() }),
        },
      },
    },
    ...commonErrors,
  },
});

const getRoute = createRoute({
  operationId: 'getEvent',
  tags: ['Admin: jobs'],
  method: 'get',
  path: '/api/v1/admin/events/{id}',
  summary: 'An event and the runs it started',
  middleware: [requireAdmin()] as const,
  request: { params: IdParamsSchema },
  responses: {
    200: {
      description: 'The event',
      content: { 'application/json': { schema: EventSchema.extend({ runs: z.array(RunSummarySchema) }) } },
    },
    ...commonErrors,
    ...notFoundError,
  },
});

const replayRoute = createRoute({
  operationId: 'replayEvent',
  tags: ['Admin: jobs'],
  method: 'post',
  path: '/api/v1/admin/events/{id}/replay',
  summary: 'Sends a copy of the event with a fresh id: the functions it triggers run again',
  middleware: [requireAdmin()] as const,
  request: { params: IdParamsSchema },
  responses: {
    202: {
      description: 'The new event, queued for the workers',
      content: { 'application/json': { schema: EventSchema } },
    },
    ...commonErrors,
    ...notFoundError,
  },
});

export function registerAdminEvents(app: OpenAPIHono<AppEnv>) {
  app.openapi(listRoute, async (c) => {
    const page = await listEvents(c.get('services').db, c.req.valid('query'));
    return c.json({ data: page.events, nextCursor: page.nextCursor }, 200);
  });
  app.openapi(getRoute, async (c) => {
    const { id } = c.req.valid('param');
    const event = await getEvent(c.get('services').db, id);
    if (!event) throw new AppError('event_not_found', `No event with id ${id}`);
    return c.json(event, 200);
  });
  app.openapi(replayRoute, async (c) => {
    const { id } = c.req.valid('param');
    return c.json(await replayEvent(c.get('services').db, id, Date.now()), 202);
  });
}
