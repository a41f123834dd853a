import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import {
  createCustomer,
  getCustomer,
  listCustomers,
  rotateCustomerKey,
  updateCustomer,
} from '../../../lib/customers';
import { customerEtag } from '../../../lib/etag';
import { deleteCustomerAndWebhooks } from '../../../lib/lifecycle/remove-webhook';
import {
  bodyErrors,
  commonErrors,
  conflictError,
  deleteWithIfMatchResponses,
  IdempotencyHeaders,
  IdempotentReplayedHeaders,
  IfMatchHeaders,
  idempotencyKeyReusedError,
  notFoundError,
  preconditionFailedError,
} from '../../../lib/schemas/common';
import {
  CreateCustomerSchema,
  CreatedCustomerSchema,
  CustomerSchema,
  CustomerWithKeySchema,
  IdParamsSchema,
  ListCustomersQuerySchema,
  UpdateCustomerSchema,
} from '../../../lib/schemas/customers';
import { checkWebhookUrl } from '../../../lib/webhooks/settings';
import type { AppEnv } from '../../env';
import { requireAdmin } from '../../middleware/auth';
import { requestContext } from '../../request-context';

const tags = ['Admin: customers'];
const security = [{ adminKey: [] }];
const middleware = requireAdmin();
const jsonBody = <T extends z.ZodType>(schema: T) => ({
  required: true,
  content: { 'application/json': { schema } },
});
const etagHeaders = z.object({
  ETag: z
    .string()
    .openapi({ description: "The customer's settings version: send it as If-Match on a PATCH" }),
});
const customerResponse = {
  headers: etagHeaders,
  content: { 'application/json': { schema: z.object({ customer: CustomerSchema }) } },
};

const createCustomerRoute = createRoute({
  operationId: 'createCustomer',
  tags,
  security,
  middleware,
  method: 'post',
  path: '/api/v1/admin/customers',
  summary: 'Creates a customer and its first API key (shown once)',
  request: { headers: IdempotencyHeaders, body: jsonBody(CreateCustomerSchema) },
  responses: {
    201: {
      description:
        'Created (or, sent again with the same Idempotency-Key while its API key is unused, the same customer ' +
        'and webhook secret with a new API key in place of the one whose answer was lost)',
      headers: etagHeaders.extend(IdempotentReplayedHeaders.shape),
      content: { 'application/json': { schema: CreatedCustomerSchema } },
    },
    ...commonErrors,
    ...bodyErrors,
    ...conflictError,
    ...idempotencyKeyReusedError,
  },
});

const listCustomersRoute = createRoute({
  operationId: 'listCustomers',
  tags,
  security,
  middleware,
  method: 'get',
  path: '/api/v1/admin/customers',
  summary: 'Customers, newest first',
  request: { query: ListCustomersQuerySchema },
  responses: {
    200: {
      description: 'A page of customers',
      content: {
        'application/json': {
          schema: z.object({ customers: z.array(CustomerSchema), nextCursor: z.string().nullable() }),
        },
      },
    },
    ...commonErrors,
  },
});

const getCustomerRoute = createRoute({
  operationId: 'getCustomer',
  tags,
  security,
  middleware,
  method: 'get',
  path: '/api/v1/admin/customers/{id}',
  request: { params: IdParamsSchema },
  responses: { 200: { description: 'The customer', ...customerResponse }, ...commonErrors, ...notFoundError },
});

const updateCustomerRoute = createRoute({
  operationId: 'updateCustomer',
  tags,
  security,
  middleware,
  method: 'patch',
  path: '/api/v1/admin/customers/{id}',
  summary: 'Changes plan, limits, webhook URL or status (suspended keys get 403, agents stop answering)',
  request: { params: IdParamsSchema, headers: IfMatchHeaders, body: jsonBody(UpdateCustomerSchema) },
  responses: {
    200: { description: 'The updated customer', ...customerResponse },
    ...commonErrors,
    ...bodyErrors,
    ...notFoundError,
    ...preconditionFailedError,
  },
});

const deleteCustomerRoute = createRoute({
  operationId: 'deleteCustomer',
  tags,
  security,
  middleware,
  method: 'delete',
  path: '/api/v1/admin/customers/{id}',
  summary: 'Deletes the customer with its keys, agents, credentials and messages',
  request: { params: IdParamsSchema, headers: IfMatchHeaders },
  responses: deleteWithIfMatchResponses,
});

const rotateKeyRoute = createRoute({
  operationId: 'rotateCustomerKey',
  tags,
  security,
  middleware,
  method: 'post',
  path: '/api/v1/admin/customers/{id}/rotate-key',
  summary: 'Issues a new API key (shown once); the old one stops working at once',
  request: { params: IdParamsSchema },
  responses: {
    200: { description: 'The new key', content: { 'application/json': { schema: CustomerWithKeySchema } } },
    ...commonErrors,
    ...notFoundError,
  },
});

export function registerAdminCustomers(app: OpenAPIHono<AppEnv>) {
  app.openapi(createCustomerRoute, async (c) => {
    const { db, keyring } = c.get('services');
    const body = c.req.valid('json');
    if (body.webhookUrl !== undefined) checkWebhookUrl(c.get('services').config, body.webhookUrl);
    const { replayed, ...created } = await createCustomer(db, requestContext(c), keyring, body, {
      idempotencyKey: c.req.valid('header')['idempotency-key'],
    });
    c.header('ETag', customerEtag(created.customer));
    if (replayed) c.header('Idempotent-Replayed', 'true');
    return c.json(created, 201);
  });
  app.openapi(listCustomersRoute, async (c) => {
    const page = await listCustomers(c.get('services').db, c.req.valid('query'));
    return c.json({ customers: page.items, nextCursor: page.nextCursor }, 200);
  });
  app.openapi(getCustomerRoute, async (c) => {
    const customer = await getCustomer(c.get('services').db, c.req.valid('param').id);
    c.header('ETag', customerEtag(customer));
    return c.json({ customer }, 200);
  });
  app.openapi(updateCustomerRoute, async (c) => {
    const webhookUrl = c.req.valid('json').webhookUrl;
    if (webhookUrl !== undefined && webhookUrl !== null)
      checkWebhookUrl(c.get('services').config, webhookUrl);
    const customer = await updateCustomer(
      c.get('services').db,
      requestContext(c),
      c.req.valid('param').id,
      c.req.valid('json'),
      { ifMatch: c.req.valid('header')['if-match'] },
    );
    c.header('ETag', customerEtag(customer));
    return c.json({ customer }, 200);
  });
  app.openapi(deleteCustomerRoute, async (c) => {
    await deleteCustomerAndWebhooks(c.get('services'), requestContext(c), c.req.valid('param').id, {
      ifMatch: c.req.valid('header')['if-match'],
    });
    return c.body(null, 204);
  });
  app.openapi(rotateKeyRoute, async (c) => {
    const result = await rotateCustomerKey(c.get('services').db, requestContext(c), c.req.valid('param').id);
    return c.json(result, 200);
  });
}
