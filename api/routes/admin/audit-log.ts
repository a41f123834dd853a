import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { listAuditEntries } from '../../../lib/audit';
import { AdminAuditQuerySchema, AuditListSchema } from '../../../lib/schemas/audit';
import { commonErrors } from '../../../lib/schemas/common';
import type { AppEnv } from '../../env';
import { requireAdmin } from '../../middleware/auth';

const route = createRoute({
  operationId: 'listAdminAuditLog',
  tags: ['Admin: audit'],
  security: [{ adminKey: [] }],
  middleware: [requireAdmin()] as const,
  method: 'get',
  path: '/api/v1/admin/audit-log',
  summary: 'Every audit entry, newest first',
  request: { query: AdminAuditQuerySchema },
  responses: {
    200: { description: 'A page of entries', content: { 'application/json': { schema: AuditListSchema } } },
    ...commonErrors,
  },
});

export function registerAdminAuditLog(app: OpenAPIHono<AppEnv>) {
  app.openapi(route, async (c) => {
    const page = await listAuditEntries(c.get('services').db, c.req.valid('query'));
    return c.json({ entries: page.items, nextCursor: page.nextCursor }, 200);
  });
}
