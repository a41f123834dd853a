import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import {
  bodyErrors,
  commonErrors,
  conflictError,
  IdempotencyHeaders,
  IdempotentReplayedHeaders,
  IdParamsSchema,
  idempotencyKeyReusedError,
  jobsUnavailableError,
  notFoundError,
} from '../../lib/schemas/common';
import {
  DeliveryDetailSchema,
  DeliverySchema,
  ListDeliveriesQuerySchema,
  RotateWebhookSecretSchema,
  SetWebhookSchema,
  WebhookSettingsSchema,
} from '../../lib/schemas/webhooks';
import { getDeliveryWithAttempts, listDeliveries } from '../../lib/webhooks/deliveries';
import {
  getWebhookSettings,
  redeliver,
  rotateCustomerWebhookSecret,
  sendTestPing,
  setWebhookUrl,
} from '../../lib/webhooks/settings';
import type { AppEnv } from '../env';
import { customerIdOf, requireCustomer } from '../middleware/auth';
import { requestContext } from '../request-context';

const tags = ['Webhook'];
const security = [{ customerKey: [] }];
const middleware = requireCustomer();
const settingsResponse = {
  content: { 'application/json': { schema: z.object({ webhook: WebhookSettingsSchema }) } },
};
const deliveryResponse = {
  content: { 'application/json': { schema: z.object({ delivery: DeliverySchema }) } },
};

const getRoute = createRoute({
  operationId: 'getWebhook',
  tags,
  security,
  middleware,
  method: 'get',
  path: '/api/v1/webhook',
  responses: { 200: { description: 'Webhook settings', ...settingsResponse }, ...commonErrors },
});

const putRoute = createRoute({
  operationId: 'setWebhook',
  tags,
  security,
  middleware,
  method: 'put',
  path: '/api/v1/webhook',
  summary: 'Sets (or, with null, clears) the URL events are delivered to',
  request: { body: { required: true, content: { 'application/json': { schema: SetWebhookSchema } } } },
  responses: { 200: { description: 'Updated', ...settingsResponse }, ...commonErrors, ...bodyErrors },
});

const rotateRoute = createRoute({
  operationId: 'rotateWebhookSecret',
  tags,
  security,
  middleware,
  method: 'post',
  path: '/api/v1/webhook/rotate-secret',
  summary: 'A new signing secret (shown once); the old one keeps signing during the grace period',
  request: {
    headers: IdempotencyHeaders,
    body: { required: false, content: { 'application/json': { schema: RotateWebhookSecretSchema } } },
  },
  responses: {
    200: {
      description:
        'The new secret (or, sent again with the same Idempotency-Key, the secret that rotation made)',
      headers: IdempotentReplayedHeaders,
      content: {
        'application/json': { schema: z.object({ webhook: WebhookSettingsSchema, secret: z.string() }) },
      },
    },
    ...commonErrors,
    ...bodyErrors,
    ...conflictError,
    ...idempotencyKeyReusedError,
  },
});

const testRoute = createRoute({
  operationId: 'testWebhook',
  tags,
  security,
  middleware,
  method: 'post',
  path: '/api/v1/webhook/test',
  summary: 'Sends a signed ping event to the webhook URL',
  responses: {
    202: { description: 'Queued', ...deliveryResponse },
    ...commonErrors,
    ...conflictError,
    ...jobsUnavailableError,
  },
});

const listRoute = createRoute({
  operationId: 'listWebhookDeliveries',
  tags,
  security,
  middleware,
  method: 'get',
  path: '/api/v1/webhook/deliveries',
  summary: 'Deliveries, newest first, with their last attempt',
  request: { query: ListDeliveriesQuerySchema },
  responses: {
    200: {
      description: 'A page of deliveries',
      content: {
        'application/json': {
          schema: z.object({ deliveries: z.array(DeliverySchema), nextCursor: z.string().nullable() }),
        },
      },
    },
    ...commonErrors,
  },
});

const getDeliveryRoute = createRoute({
  operationId: 'getWebhookDelivery',
  tags,
  security,
  middleware,
  method: 'get',
  path: '/api/v1/webhook/deliveries/{id}',
  summary: 'A delivery with every attempt',
  request: { params: IdParamsSchema },
  responses: {
    200: {
      description: 'The delivery',
      content: { 'application/json': { schema: z.object({ delivery: DeliveryDetailSchema }) } },
    },
    ...commonErrors,
    ...notFoundError,
  },
});

const redeliverRoute = createRoute({
  operationId: 'redeliverWebhook',
  tags,
  security,
  middleware,
  method: 'post',
  path: '/api/v1/webhook/deliveries/{id}/redeliver',
  summary: 'Sends the same event (same id and body) again, as a new delivery',
  request: { params: IdParamsSchema },
  responses: {
    202: { description: 'Queued', ...deliveryResponse },
    ...commonErrors,
    ...notFoundError,
    ...conflictError,
    ...jobsUnavailableError,
  },
});

export function registerWebhook(app: OpenAPIHono<AppEnv>) {
  app.openapi(getRoute, async (c) => {
    const webhook = await getWebhookSettings(c.get('services').db, customerIdOf(c.get('actor')), new Date());
    return c.json({ webhook }, 200);
  });
  app.openapi(putRoute, async (c) => {
    const { db, config } = c.get('services');
    const webhook = await setWebhookUrl(
      db,
      config,
      requestContext(c),
      customerIdOf(c.get('actor')),
      c.req.valid('json').url,
    );
    return c.json({ webhook }, 200);
  });
  app.openapi(rotateRoute, async (c) => {
    const { db, keyring } = c.get('services');
    // The body is optional: without one, the defaults apply.
    const body = RotateWebhookSecretSchema.parse(c.req.valid('json') ?? {});
    const { webhook, secret, replayed } = await rotateCustomerWebhookSecret(
      db,
      keyring,
      requestContext(c),
      customerIdOf(c.get('actor')),
      body.gracePeriodHours * 3_600_000,
      { idempotencyKey: c.req.valid('header')['idempotency-key'] },
    );
    if (replayed) c.header('Idempotent-Replayed', 'true');
    return c.json({ webhook, secret }, 200);
  });
  app.openapi(testRoute, async (c) => {
    const delivery = await sendTestPing(
      c.get('services').db,
      c.get('sendEvent'),
      customerIdOf(c.get('actor')),
    );
    return c.json({ delivery }, 202);
  });
  app.openapi(listRoute, async (c) => {
    const page = await listDeliveries(
      c.get('services').db,
      customerIdOf(c.get('actor')),
      c.req.valid('query'),
    );
    return c.json({ deliveries: page.items, nextCursor: page.nextCursor }, 200);
  });
  app.openapi(getDeliveryRoute, async (c) => {
    const delivery = await getDeliveryWithAttempts(
      c.get('services').db,
      customerIdOf(c.get('actor')),
      c.req.valid('param').id,
    );
    return c.json({ delivery }, 200);
  });
  app.openapi(redeliverRoute, async (c) => {
    const delivery = await redeliver(
      c.get('services').db,
      c.get('sendEvent'),
      requestContext(c),
      customerIdOf(c.get('actor')),
      c.req.valid('param').id,
    );
    return c.json({ delivery }, 202);
  });
}
