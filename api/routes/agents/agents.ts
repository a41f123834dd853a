import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { createAgent, getOwnAgent, listAgents, toAgent, updateAgent } from '../../../lib/agents';
import { agentEtag } from '../../../lib/etag';
import { deleteAgentAndWebhook } from '../../../lib/lifecycle/remove-webhook';
import {
  AgentSchema,
  CreateAgentSchema,
  ListAgentsQuerySchema,
  UpdateAgentSchema,
} from '../../../lib/schemas/agents';
import {
  bodyErrors,
  commonErrors,
  conflictError,
  deleteWithIfMatchResponses,
  IdempotencyHeaders,
  IdempotentReplayedHeaders,
  IdParamsSchema,
  IfMatchHeaders,
  idempotencyKeyReusedError,
  notFoundError,
  preconditionFailedError,
} from '../../../lib/schemas/common';
import type { AppEnv } from '../../env';
import { customerIdOf, requireCustomer } from '../../middleware/auth';
import { requestContext } from '../../request-context';

const tags = ['Agents'];
const security = [{ customerKey: [] }];
const middleware = requireCustomer();
const agentResponse = {
  headers: z.object({
    ETag: z.string().openapi({ description: "The agent's settings version: send it as If-Match on a PATCH" }),
  }),
  content: { 'application/json': { schema: z.object({ agent: AgentSchema }) } },
};

const createAgentRoute = createRoute({
  operationId: 'createAgent',
  tags,
  security,
  middleware,
  method: 'post',
  path: '/api/v1/agents',
  summary: 'Creates an agent (only the fields below; tools, skills, files or routing are refused)',
  request: {
    headers: IdempotencyHeaders,
    body: { required: true, content: { 'application/json': { schema: CreateAgentSchema } } },
  },
  responses: {
    201: {
      description: 'Created (or, sent again with the same Idempotency-Key, the first answer)',
      headers: agentResponse.headers.extend(IdempotentReplayedHeaders.shape),
      content: agentResponse.content,
    },
    ...commonErrors,
    ...bodyErrors,
    ...conflictError,
    ...idempotencyKeyReusedError,
  },
});

const listAgentsRoute = createRoute({
  operationId: 'listAgents',
  tags,
  security,
  middleware,
  method: 'get',
  path: '/api/v1/agents',
  summary: "The customer's agents, newest first",
  request: { query: ListAgentsQuerySchema },
  responses: {
    200: {
      description: 'A page of agents',
      content: {
        'application/json': {
          schema: z.object({ agents: z.array(AgentSchema), nextCursor: z.string().nullable() }),
        },
      },
    },
    ...commonErrors,
  },
});

const getAgentRoute = createRoute({
  operationId: 'getAgent',
  tags,
  security,
  middleware,
  method: 'get',
  path: '/api/v1/agents/{id}',
  request: { params: IdParamsSchema },
  responses: { 200: { description: 'The agent', ...agentResponse }, ...commonErrors, ...notFoundError },
});

const updateAgentRoute = createRoute({
  operationId: 'updateAgent',
  tags,
  security,
  middleware,
  method: 'patch',
  path: '/api/v1/agents/{id}',
  summary: 'Changes settings; a running agent uses them from its next message',
  request: {
    params: IdParamsSchema,
    headers: IfMatchHeaders,
    body: { required: true, content: { 'application/json': { schema: UpdateAgentSchema } } },
  },
  responses: {
    200: { description: 'The updated agent', ...agentResponse },
    ...commonErrors,
    ...bodyErrors,
    ...notFoundError,
    ...preconditionFailedError,
  },
});

const deleteAgentRoute = createRoute({
  operationId: 'deleteAgent',
  tags,
  security,
  middleware,
  method: 'delete',
  path: '/api/v1/agents/{id}',
  summary: 'Deletes the agent with its credentials, chats and messages',
  request: { params: IdParamsSchema, headers: IfMatchHeaders },
  responses: deleteWithIfMatchResponses,
});

export function registerAgents(app: OpenAPIHono<AppEnv>) {
  app.openapi(createAgentRoute, async (c) => {
    const { db, models } = c.get('services');
    const { agent, replayed } = await createAgent(
      db,
      requestContext(c),
      customerIdOf(c.get('actor')),
      models,
      c.req.valid('json'),
      { idempotencyKey: c.req.valid('header')['idempotency-key'] },
    );
    c.header('ETag', agentEtag(agent));
    if (replayed) c.header('Idempotent-Replayed', 'true');
    return c.json({ agent }, 201);
  });
  app.openapi(listAgentsRoute, async (c) => {
    const page = await listAgents(c.get('services').db, customerIdOf(c.get('actor')), c.req.valid('query'));
    return c.json({ agents: page.items, nextCursor: page.nextCursor }, 200);
  });
  app.openapi(getAgentRoute, async (c) => {
    const row = await getOwnAgent(
      c.get('services').db,
      customerIdOf(c.get('actor')),
      c.req.valid('param').id,
    );
    const agent = toAgent(row);
    c.header('ETag', agentEtag(agent));
    return c.json({ agent }, 200);
  });
  app.openapi(updateAgentRoute, async (c) => {
    const { db, models } = c.get('services');
    const agent = await updateAgent(
      db,
      requestContext(c),
      customerIdOf(c.get('actor')),
      c.req.valid('param').id,
      models,
      c.req.valid('json'),
      { ifMatch: c.req.valid('header')['if-match'] },
    );
    c.header('ETag', agentEtag(agent));
    return c.json({ agent }, 200);
  });
  app.openapi(deleteAgentRoute, async (c) => {
    await deleteAgentAndWebhook(
      c.get('services'),
      requestContext(c),
      customerIdOf(c.get('actor')),
      c.req.valid('param').id,
      { ifMatch: c.req.valid('header')['if-match'] },
    );
    return c.body(null, 204);
  });
}
