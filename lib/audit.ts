import { and, desc, eq, type SQL } from 'drizzle-orm';
import type { RequestContext } from './actor';
import type { Queryable } from './db/client';
import { auditLog } from './db/schema';
import { type CursorPage, cursorCondition, pageOf } from './pagination';

export interface AuditEntryInput {
  action: string;
  targetType: string;
  targetId?: string | null | undefined;
  /** The tenant the entry belongs to; a customer sees only its own. */
  customerId?: string | null | undefined;
  outcome?: 'success' | 'failure';
  /** Never a secret: callers pass ids, field names and codes only. */
  details?: Record<string, unknown> | undefined;
}

/** Writes one audit row; pass the transaction of the change so both commit or neither does. */
export async function recordAudit(
  db: Queryable,
  context: RequestContext,
  entry: AuditEntryInput,
): Promise<void> {
  const { actor } = context;
  await db.insert(auditLog).values({
    actorType: actor.type,
    actorId: actor.type === 'customer' ? actor.customerId : actor.type,
    actorKeyPrefix: actor.type === 'customer' ? actor.keyPrefix : null,
    customerId: entry.customerId ?? (actor.type === 'customer' ? actor.customerId : null),
    action: entry.action,
    targetType: entry.targetType,
    targetId: entry.targetId ?? null,
    requestId: context.requestId ?? null,
    ip: context.ip ?? null,
    outcome: entry.outcome ?? 'success',
    details: entry.details ?? null,
  });
}

export type AuditRow = typeof auditLog.$inferSelect;

export interface AuditEntry {
  id: string;
  actor: { type: AuditRow['actorType']; id: string; keyPrefix: string | null };
  customerId: string | null;
  action: string;
  target: { type: string; id: string | null };
  requestId: string | null;
  ip: string | null;
  outcome: AuditRow['outcome'];
  details: Record<string, unknown> | null;
  createdAt: string;
}

export function toAuditEntry(row: AuditRow): AuditEntry {
  return {
    id: row.id,
    actor: { type: row.actorType, id: row.actorId, keyPrefix: row.actorKeyPrefix },
    customerId: row.customerId,
    action: row.action,
    target: { type: row.targetType, id: row.targetId },
    requestId: row.requestId,
    ip: row.ip,
    outcome: row.outcome,
    details: row.details,
    createdAt: row.createdAt.toISOString(),
  };
}

/**
 * What a customer sees of an entry: the operator's (or the platform's) own entries about it without
 * the IP address they came from, which is the operator's to know, not the customer's.
 */
function asCustomerSees(entry: AuditEntry): AuditEntry {
  return entry.actor.type === 'customer' ? entry : { ...entry, ip: null };
}

export async function listAuditEntries(
  db: Queryable,
  filter: {
    customerId?: string | undefined;
    action?: string | undefined;
    limit: number;
    cursor?: string | undefined;
  },
  options: { viewer: 'admin' | 'customer' } = { viewer: 'admin' },
): Promise<CursorPage<AuditEntry>> {
  const conditions: SQL[] = [];
  if (filter.customerId) conditions.push(eq(auditLog.customerId, filter.customerId));
  if (filter.action) conditions.push(eq(auditLog.action, filter.action));
  const after = cursorCondition(auditLog, filter.cursor);
  if (after) conditions.push(after);
  const rows = await db
    .select()
    .from(auditLog)
    .where(and(...conditions))
    .orderBy(desc(auditLog.createdAt), desc(auditLog.id))
    .limit(filter.limit + 1);
  const toEntry =
    options.viewer === 'customer' ? (row: AuditRow) => asCustomerSees(toAuditEntry(row)) : toAuditEntry;
  return pageOf(rows, filter.limit, toEntry);
}
