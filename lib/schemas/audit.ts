import { z } from '@hono/zod-openapi';
import { PageQuerySchema, Timestamp } from './common';

export const AuditEntrySchema = z
  .object({
    id: z.uuid(),
    actor: z.object({
      type: z.enum(['admin', 'customer', 'system']),
      id: z.string(),
      keyPrefix: z.string().nullable().openapi({ example: 'oc_4fQa8ZkP' }),
    }),
    customerId: z.string().nullable(),
    action: z.string().openapi({ example: 'agent.create' }),
    target: z.object({ type: z.string(), id: z.string().nullable() }),
    requestId: z.string().nullable(),
    ip: z.string().nullable(),
    outcome: z.enum(['success', 'failure']),
    details: z.record(z.string(), z.unknown()).nullable(),
    createdAt: Timestamp,
  })
  .openapi('AuditEntry');

export const AuditListSchema = z.object({
  entries: z.array(AuditEntrySchema),
  nextCursor: z.string().nullable(),
});

export const CustomerAuditQuerySchema = PageQuerySchema.extend({ action: z.string().max(100).optional() });
export const AdminAuditQuerySchema = CustomerAuditQuerySchema.extend({ customerId: z.uuid().optional() });
