import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import {
  agentStartRequested,
  agentStopRequested,
  credentialsValidateRequested,
} from '../../../functions/events';
import { getCredentialStatuses } from '../../../lib/credentials';
import { AppError } from '../../../lib/errors';
import { awaitValidation, getAgentStatus } from '../../../lib/lifecycle/status';
import { requestStart, requestStop } from '../../../lib/lifecycle/transitions';
import { AgentSchema } from '../../../lib/schemas/agents';
import {
  commonErrors,
  conflictError,
  IdParamsSchema,
  jobsUnavailableError,
  notFoundError,
  Timestamp,
} from '../../../lib/schemas/common';
import { CredentialStatusSchema } from '../../../lib/schemas/credentials';
import type { AppEnv } from '../../env';
import { customerIdOf, requireCustomer } from '../../middleware/auth';
import { requestContext } from '../../request-context';

const tags = ['Agent lifecycle'];
const security = [{ customerKey: [] }];
const middleware = requireCustomer();
/** How long the validate call waits for the providers before answering 202. */
const VALIDATE_WAIT_MS = 10_000;

const credentialsBody = z.object({
  credentials: z.object({ telegram: CredentialStatusSchema, claude: CredentialStatusSchema }),
});

const validateRoute = createRoute({
  operationId: 'validateCredentials',
  tags,
  security,
  middleware,
  method: 'post',
  path: '/api/v1/agents/{id}/credentials/validate',
  summary: 'Checks both credentials with Telegram (getMe) and Anthropic (models list)',
  request: { params: IdParamsSchema },
  responses: {
    200: {
      description: 'Each credential: valid, invalid (with the reason) or unreachable',
      content: { 'application/json': { schema: credentialsBody } },
    },
    202: {
      description: 'Still checking: poll GET /api/v1/agents/{id}/credentials',
      content: {
        'application/json': { schema: z.object({ status: z.literal('pending'), poll: z.string() }) },
      },
    },
    ...commonErrors,
    ...notFoundError,
    ...conflictError,
    ...jobsUnavailableError,
  },
});

const agentBody = { content: { 'application/json': { schema: z.object({ agent: AgentSchema }) } } };

const startRoute = createRoute({
  operationId: 'startAgent',
  tags,
  security,
  middleware,
  method: 'post',
  path: '/api/v1/agents/{id}/start',
  summary:
    'Starts answering on Telegram (both credentials must be valid); idempotent: a retry while starting sends the start again',
  request: { params: IdParamsSchema },
  responses: {
    202: { description: 'Starting (or already starting/running)', ...agentBody },
    ...commonErrors,
    ...notFoundError,
    ...conflictError,
    ...jobsUnavailableError,
  },
});

const stopRoute = createRoute({
  operationId: 'stopAgent',
  tags,
  security,
  middleware,
  method: 'post',
  path: '/api/v1/agents/{id}/stop',
  summary: 'Stops answering on Telegram; idempotent: a retry while stopping sends the stop again',
  request: { params: IdParamsSchema },
  responses: {
    202: { description: 'Stopping (or already stopped)', ...agentBody },
    ...commonErrors,
    ...notFoundError,
    ...jobsUnavailableError,
  },
});

const StatusSchema = z
  .object({
    status: z.enum(['stopped', 'starting', 'running', 'stopping', 'error']),
    since: Timestamp,
    lastError: z.string().nullable(),
    lastErrorCode: z.string().nullable(),
    lastErrorAt: Timestamp.nullable(),
    lastMessageAt: Timestamp.nullable(),
    messagesToday: z.number().int(),
    quota: z.object({
      messagesPerDay: z.number().int(),
      remaining: z.number().int().nullable().openapi({ description: 'Null while Redis is down' }),
      resetAt: Timestamp,
    }),
    telegram: z.object({
      botUsername: z.string().nullable(),
      delivery: z.enum(['webhook', 'polling']).nullable(),
      webhook: z
        .union([
          z.object({
            url: z.string(),
            pendingUpdateCount: z.number().int(),
            lastErrorDate: Timestamp.nullable(),
            lastErrorMessage: z.string().nullable(),
          }),
          z.object({ error: z.string() }),
        ])
        .nullable()
        .openapi({ description: "Telegram's getWebhookInfo, cached for 30 s" }),
    }),
  })
  .openapi('AgentStatus');

const statusRoute = createRoute({
  operationId: 'getAgentStatus',
  tags,
  security,
  middleware,
  method: 'get',
  path: '/api/v1/agents/{id}/status',
  request: { params: IdParamsSchema },
  responses: {
    200: {
      description: 'Status',
      content: { 'application/json': { schema: z.object({ status: StatusSchema }) } },
    },
    ...commonErrors,
    ...notFoundError,
  },
});

export function registerLifecycle(app: OpenAPIHono<AppEnv>) {
  app.openapi(validateRoute, async (c) => {
    const services = c.get('services');
    const customerId = customerIdOf(c.get('actor'));
    const { id } = c.req.valid('param');
    const current = await getCredentialStatuses(services.db, customerId, id);
    if (!current.telegram.configured && !current.claude.configured) {
      throw new AppError('agent_not_ready', 'Set the Telegram and Claude credentials first', {
        details: { credentials: current },
      });
    }
    const requestedAt = new Date();
    await c.get('sendEvent')([
      {
        name: credentialsValidateRequested.name,
        data: { agentId: id, customerId },
        id: `validate-${id}-${requestedAt.getTime()}`,
      },
    ]);
    const result = await awaitValidation(services, id, requestedAt, VALIDATE_WAIT_MS);
    if (!result) return c.json({ status: 'pending' as const, poll: `/api/v1/agents/${id}/credentials` }, 202);
    return c.json({ credentials: result }, 200);
  });
  app.openapi(startRoute, async (c) => {
    const customerId = customerIdOf(c.get('actor'));
    const { id } = c.req.valid('param');
    const result = await requestStart(c.get('services').db, requestContext(c), customerId, id);
    // Sent again while the agent is still starting: the status commits before the send, so a send that
    // failed (the client got a 5xx) is retried by the client's retry. The id is the same one (same
    // statusSince), so the engine drops a copy of an event it already has.
    if (result.agent.status === 'starting') {
      await c.get('sendEvent')([
        {
          name: agentStartRequested.name,
          data: { agentId: id, customerId },
          id: `start-${id}-${result.agent.statusSince}`,
        },
      ]);
    }
    return c.json({ agent: result.agent }, 202);
  });
  app.openapi(stopRoute, async (c) => {
    const customerId = customerIdOf(c.get('actor'));
    const { id } = c.req.valid('param');
    const result = await requestStop(c.get('services').db, requestContext(c), customerId, id);
    // As for start: still stopping means the stop event is sent again, with the same id.
    if (result.agent.status === 'stopping') {
      await c.get('sendEvent')([
        {
          name: agentStopRequested.name,
          data: { agentId: id, customerId, reason: 'requested' },
          id: `stop-${id}-${result.agent.statusSince}`,
        },
      ]);
    }
    return c.json({ agent: result.agent }, 202);
  });
  app.openapi(statusRoute, async (c) => {
    const status = await getAgentStatus(
      c.get('services'),
      customerIdOf(c.get('actor')),
      c.req.valid('param').id,
    );
    return c.json({ status }, 200);
  });
}
