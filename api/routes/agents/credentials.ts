import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { deleteCredential, getCredentialStatuses, setCredential } from '../../../lib/credentials';
import { validationError } from '../../../lib/errors';
import { stopForTelegramCredentialChange } from '../../../lib/lifecycle/stop-for-credential-change';
import {
  bodyErrors,
  commonErrors,
  conflictError,
  IdParamsSchema,
  jobsUnavailableError,
  notFoundError,
} from '../../../lib/schemas/common';
import {
  CredentialStatusSchema,
  SetClaudeCredentialSchema,
  SetTelegramCredentialSchema,
} from '../../../lib/schemas/credentials';
import type { AppEnv } from '../../env';
import { customerIdOf, requireCustomer } from '../../middleware/auth';
import { zodIssues } from '../../middleware/errors';
import { requestContext } from '../../request-context';

const tags = ['Credentials'];
const security = [{ customerKey: [] }];
const middleware = requireCustomer();
const credentialResponse = {
  description: 'Stored, encrypted; only its status is returned',
  content: { 'application/json': { schema: z.object({ credential: CredentialStatusSchema }) } },
};

/** A change the agent's state refuses (lib/credentials `assertChangeableWhileLive`). */
const agentRunningError = {
  409: {
    description:
      'agent_running: the agent is running (stop it before removing its Claude key), or was started while its Telegram token changed',
    content: conflictError[409].content,
  },
} as const;

const setTelegramRoute = createRoute({
  operationId: 'setTelegramCredentials',
  tags,
  security,
  middleware,
  method: 'put',
  path: '/api/v1/agents/{id}/credentials/telegram',
  summary: "Stores the agent's Telegram bot token",
  request: {
    params: IdParamsSchema,
    body: { required: true, content: { 'application/json': { schema: SetTelegramCredentialSchema } } },
  },
  responses: {
    200: credentialResponse,
    ...commonErrors,
    ...bodyErrors,
    ...notFoundError,
    ...agentRunningError,
    ...jobsUnavailableError,
  },
});

const setClaudeRoute = createRoute({
  operationId: 'setClaudeCredentials',
  tags,
  security,
  middleware,
  method: 'put',
  path: '/api/v1/agents/{id}/credentials/claude',
  summary: "Stores the agent's Anthropic API key",
  request: {
    params: IdParamsSchema,
    body: { required: true, content: { 'application/json': { schema: SetClaudeCredentialSchema } } },
  },
  responses: { 200: credentialResponse, ...commonErrors, ...bodyErrors, ...notFoundError },
});

const KindParamsSchema = IdParamsSchema.extend({
  kind: z.enum(['telegram', 'claude']).openapi({ param: { name: 'kind', in: 'path' } }),
});

const deleteRoute = createRoute({
  operationId: 'deleteCredentials',
  tags,
  security,
  middleware,
  method: 'delete',
  path: '/api/v1/agents/{id}/credentials/{kind}',
  summary: 'Deletes one credential of the agent',
  request: { params: KindParamsSchema },
  responses: {
    204: { description: 'Deleted (or was not set)' },
    ...commonErrors,
    ...notFoundError,
    ...agentRunningError,
    ...jobsUnavailableError,
  },
});

const statusRoute = createRoute({
  operationId: 'getCredentials',
  tags,
  security,
  middleware,
  method: 'get',
  path: '/api/v1/agents/{id}/credentials',
  summary: 'Whether each credential is configured and valid (never the secrets)',
  request: { params: IdParamsSchema },
  responses: {
    200: {
      description: 'Status per credential',
      content: {
        'application/json': {
          schema: z.object({
            credentials: z.object({ telegram: CredentialStatusSchema, claude: CredentialStatusSchema }),
          }),
        },
      },
    },
    ...commonErrors,
    ...notFoundError,
  },
});

export function registerCredentials(app: OpenAPIHono<AppEnv>) {
  app.openapi(setTelegramRoute, async (c) => {
    const services = c.get('services');
    const { db, keyring } = services;
    const body = c.req.valid('json');
    const customerId = customerIdOf(c.get('actor'));
    const agentId = c.req.valid('param').id;
    // A running agent stops before its bot token changes (not for the token it has already).
    await stopForTelegramCredentialChange(
      services,
      c.get('sendEvent'),
      requestContext(c),
      customerId,
      agentId,
      { newToken: body.botToken },
    );
    const credential = await setCredential(db, requestContext(c), keyring, {
      customerId,
      agentId,
      kind: 'telegram',
      secret: body.botToken,
      botUsername: body.botUsername,
    });
    return c.json({ credential }, 200);
  });
  app.openapi(setClaudeRoute, async (c) => {
    const { db, keyring } = c.get('services');
    const credential = await setCredential(db, requestContext(c), keyring, {
      customerId: customerIdOf(c.get('actor')),
      agentId: c.req.valid('param').id,
      kind: 'claude',
      secret: c.req.valid('json').apiKey,
    });
    return c.json({ credential }, 200);
  });
  // A PUT of a kind there is none of gets the 400 naming param.kind that DELETE gives, not a 405
  // telling the client to use DELETE. The two kinds there are have their routes above, matched first.
  app.put('/api/v1/agents/:id/credentials/:kind', middleware, (c) => {
    const parsed = KindParamsSchema.safeParse(c.req.param());
    if (parsed.success) return c.notFound();
    throw validationError(zodIssues(parsed.error, 'param'));
  });
  app.openapi(deleteRoute, async (c) => {
    const { id, kind } = c.req.valid('param');
    if (kind === 'telegram') {
      await stopForTelegramCredentialChange(
        c.get('services'),
        c.get('sendEvent'),
        requestContext(c),
        customerIdOf(c.get('actor')),
        id,
      );
    }
    await deleteCredential(c.get('services').db, requestContext(c), {
      customerId: customerIdOf(c.get('actor')),
      agentId: id,
      kind,
    });
    return c.body(null, 204);
  });
  app.openapi(statusRoute, async (c) => {
    const credentials = await getCredentialStatuses(
      c.get('services').db,
      customerIdOf(c.get('actor')),
      c.req.valid('param').id,
    );
    return c.json({ credentials }, 200);
  });
}
