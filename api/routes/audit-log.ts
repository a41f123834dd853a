import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { listAuditEntries } from '../../lib/audit';
import { AuditListSchema, CustomerAuditQuerySchema } from '../../lib/schemas/audit';
import { commonErrors } from '../../lib/schemas/common';
import type { AppEnv } from '../env';
import { customerIdOf, requireCustomer } from '../middleware/auth';

const route = createRoute({
  operationId: 'listAuditLog',
  tags: ['Audit'],
  security: [{ customerKey: [] }],
  middleware: [requireCustomer()] as const,
  method: 'get',
  path: '/api/v1/audit-log',
  summary: "The customer's own audit entries, newest first",
  request: { query: CustomerAuditQuerySchema },
  responses: {
    200: { description: 'A page of entries', content: { 'application/json': { schema: AuditListSchema } } },
    ...commonErrors,
  },
});

export function registerAuditLog(app: OpenAPIHono<AppEnv>) {
  app.openapi(route, async (c) => {
    const customerId = customerIdOf(c.get('actor'));
    const page = await listAuditEntries(
      c.get('services').db,
      { ...c.req.valid('query'), customerId },
      { viewer: 'customer' },
    );
    return c.json({ entries: page.items, nextCursor: page.nextCursor }, 200);
  });
}
