import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { pairingApproved } from '../../../functions/events';
import { decideOwnPairingRequest, listOwnPairingRequests, toPairingRequestView } from '../../../lib/pairing';
import {
  commonErrors,
  conflictError,
  IdParamsSchema,
  jobsUnavailableError,
  notFoundError,
} from '../../../lib/schemas/common';
import {
  ListPairingRequestsQuerySchema,
  PairingCodeParamsSchema,
  PairingRequestSchema,
} from '../../../lib/schemas/pairing';
import type { AppEnv } from '../../env';
import { customerIdOf, requireCustomer } from '../../middleware/auth';
import { requestContext } from '../../request-context';

const tags = ['Pairing'];
const security = [{ customerKey: [] }];
const middleware = requireCustomer();
const requestBody = {
  content: { 'application/json': { schema: z.object({ pairingRequest: PairingRequestSchema }) } },
};

const listRoute = createRoute({
  operationId: 'listPairingRequests',
  tags,
  security,
  middleware,
  method: 'get',
  path: '/api/v1/agents/{id}/pairing-requests',
  summary: 'Codes unknown Telegram users received (DM policy "pairing"), newest first',
  request: { params: IdParamsSchema, query: ListPairingRequestsQuerySchema },
  responses: {
    200: {
      description: 'A page of pairing requests; pending ones past their hour show as expired',
      content: {
        'application/json': {
          schema: z.object({
            pairingRequests: z.array(PairingRequestSchema),
            nextCursor: z.string().nullable(),
          }),
        },
      },
    },
    ...commonErrors,
    ...notFoundError,
  },
});

const decisionRoute = (decision: 'approve' | 'reject') =>
  createRoute({
    operationId: decision === 'approve' ? 'approvePairingRequest' : 'rejectPairingRequest',
    tags,
    security,
    middleware,
    method: 'post',
    path: `/api/v1/agents/{id}/pairing-requests/{code}/${decision}`,
    summary:
      decision === 'approve'
        ? "Approves a pending code: the sender's id joins telegramAllowFrom and they are told; idempotent"
        : 'Rejects a pending code; the sender may ask again later',
    request: { params: PairingCodeParamsSchema },
    responses: {
      200: { description: decision === 'approve' ? 'Approved' : 'Rejected', ...requestBody },
      ...commonErrors,
      404: {
        description:
          decision === 'approve'
            ? 'No such agent, or no pending or approved code (unknown, expired or rejected: details.status)'
            : 'No such agent, or no pending code (unknown, expired or already decided: details.status)',
        content: notFoundError[404].content,
      },
      ...(decision === 'approve'
        ? {
            409: {
              description: 'allowlist_full: telegramAllowFrom already holds its maximum of entries',
              content: conflictError[409].content,
            },
            ...jobsUnavailableError,
          }
        : {}),
    },
  });

export function registerPairing(app: OpenAPIHono<AppEnv>) {
  app.openapi(listRoute, async (c) => {
    const { id } = c.req.valid('param');
    const page = await listOwnPairingRequests(
      c.get('services').db,
      customerIdOf(c.get('actor')),
      id,
      c.req.valid('query'),
    );
    return c.json({ pairingRequests: page.items, nextCursor: page.nextCursor }, 200);
  });
  for (const decision of ['approve', 'reject'] as const) {
    app.openapi(decisionRoute(decision), async (c) => {
      const customerId = customerIdOf(c.get('actor'));
      const { id, code } = c.req.valid('param');
      const { request } = await decideOwnPairingRequest(c.get('services').db, requestContext(c), {
        customerId,
        agentId: id,
        code,
        decision,
        now: new Date(),
      });
      // Also for a code approved before (a retry after a failed send): the same id, so the engine keeps
      // one event, and the notify function tells the user once.
      if (decision === 'approve') {
        await c.get('sendEvent')([
          {
            name: pairingApproved.name,
            id: `pairing-approved-${request.id}`,
            data: { agentId: id, customerId, pairingRequestId: request.id },
          },
        ]);
      }
      return c.json({ pairingRequest: toPairingRequestView(request) }, 200);
    });
  }
}
