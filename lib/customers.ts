import { randomUUID } from 'node:crypto';
import { and, desc, eq, isNull, type SQL } from 'drizzle-orm';
import type { RequestContext } from './actor';
import { generateApiKey } from './api-keys';
import { recordAudit } from './audit';
import { changedFields } from './changed-fields';
import type { Keyring } from './crypto';
import type { Database, Queryable } from './db/client';
import { apiKeys, customers } from './db/schema';
import { AppError } from './errors';
import { checkIfMatch, customerEtag } from './etag';
import { type CursorPage, cursorCondition, isUuid, pageOf } from './pagination';
import {
  type CreateCustomerInput,
  type Customer,
  PLAN_MAX_AGENTS,
  type UpdateCustomerInput,
} from './schemas/customers';
import { currentSecretColumns } from './webhooks/secrets';
import { generateWebhookSecret } from './webhooks/sign';

type CustomerRow = typeof customers.$inferSelect;

export function toCustomer(row: CustomerRow): Customer {
  return {
    id: row.id,
    name: row.name,
    email: row.email,
    plan: row.plan,
    maxAgents: row.maxAgents,
    status: row.status,
    webhookUrl: row.webhookUrl,
    limits: { apiRequestsPerHour: row.apiRequestsPerHour, messagesPerDay: row.messagesPerDay },
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

const notFound = (id: string) => new AppError('customer_not_found', `No customer with id ${id}`);

export async function findCustomerRow(db: Queryable, id: string, options: { forUpdate?: boolean } = {}) {
  if (!isUuid(id)) return undefined;
  const query = db.select().from(customers).where(eq(customers.id, id));
  const [row] = options.forUpdate ? await query.for('update') : await query;
  return row;
}

export async function getCustomer(db: Queryable, id: string): Promise<Customer> {
  const row = await findCustomerRow(db, id);
  if (!row) throw notFound(id);
  return toCustomer(row);
}

export async function createCustomer(
  db: Database,
  context: RequestContext,
  keyring: Keyring,
  input: CreateCustomerInput,
): Promise<{ customer: Customer; apiKey: string; webhookSecret: string }> {
  const key = generateApiKey();
  const webhookSecret = generateWebhookSecret();
  // The id is chosen here because the signing secret is encrypted bound to it, in the same insert.
  const id = randomUUID();
  return db.transaction(async (tx) => {
    const [row] = await tx
      .insert(customers)
      .values({
        id,
        ...currentSecretColumns(keyring, id, webhookSecret),
        name: input.name,
        email: input.email ?? null,
        plan: input.plan,
        maxAgents: input.maxAgents ?? PLAN_MAX_AGENTS[input.plan],
        webhookUrl: input.webhookUrl ?? null,
        apiRequestsPerHour: input.limits?.apiRequestsPerHour ?? null,
        messagesPerDay: input.limits?.messagesPerDay ?? null,
      })
      .returning();
    if (!row) throw new Error('insert returned no row');
    await tx.insert(apiKeys).values({ customerId: row.id, prefix: key.prefix, hash: key.hash });
    await recordAudit(tx, context, {
      action: 'customer.create',
      targetType: 'customer',
      targetId: row.id,
      customerId: row.id,
      details: { plan: row.plan, maxAgents: row.maxAgents, keyPrefix: key.prefix },
    });
    return { customer: toCustomer(row), apiKey: key.key, webhookSecret };
  });
}

export async function listCustomers(
  db: Queryable,
  filter: {
    plan?: CustomerRow['plan'] | undefined;
    status?: CustomerRow['status'] | undefined;
    limit: number;
    cursor?: string | undefined;
  },
): Promise<CursorPage<Customer>> {
  const conditions: SQL[] = [];
  if (filter.plan) conditions.push(eq(customers.plan, filter.plan));
  if (filter.status) conditions.push(eq(customers.status, filter.status));
  const after = cursorCondition(customers, filter.cursor);
  if (after) conditions.push(after);
  const rows = await db
    .select()
    .from(customers)
    .where(and(...conditions))
    .orderBy(desc(customers.createdAt), desc(customers.id))
    .limit(filter.limit + 1);
  return pageOf(rows, filter.limit, toCustomer);
}

export async function updateCustomer(
  db: Database,
  context: RequestContext,
  id: string,
  input: UpdateCustomerInput,
  options: { ifMatch?: string | undefined } = {},
): Promise<Customer> {
  return db.transaction(async (tx) => {
    const current = await findCustomerRow(tx, id, { forUpdate: true });
    if (!current) throw notFound(id);
    checkCustomerIfMatch(current, options.ifMatch);
    const changes: Partial<typeof customers.$inferInsert> = {};
    if (input.name !== undefined) changes.name = input.name;
    if (input.email !== undefined) changes.email = input.email;
    if (input.plan !== undefined) changes.plan = input.plan;
    if (input.maxAgents !== undefined) changes.maxAgents = input.maxAgents;
    else if (
      input.plan !== undefined &&
      input.plan !== current.plan &&
      current.maxAgents === PLAN_MAX_AGENTS[current.plan]
    ) {
      // The old plan's number of agents follows the plan; one the operator set stays.
      changes.maxAgents = PLAN_MAX_AGENTS[input.plan];
    }
    if (input.webhookUrl !== undefined) changes.webhookUrl = input.webhookUrl;
    if (input.limits?.apiRequestsPerHour !== undefined)
      changes.apiRequestsPerHour = input.limits.apiRequestsPerHour;
    if (input.limits?.messagesPerDay !== undefined) changes.messagesPerDay = input.limits.messagesPerDay;
    if (input.status !== undefined && input.status !== current.status) {
      changes.status = input.status;
      changes.suspendedAt = input.status === 'suspended' ? new Date() : null;
    }
    const changed = changedFields(current, changes);
    const [row] = Object.keys(changed).length
      ? await tx.update(customers).set(changed).where(eq(customers.id, id)).returning()
      : [current];
    if (!row) throw notFound(id);
    await recordAudit(tx, context, {
      action:
        changes.status === 'suspended'
          ? 'customer.suspend'
          : changes.status === 'active'
            ? 'customer.reactivate'
            : 'customer.update',
      targetType: 'customer',
      targetId: current.id,
      customerId: id,
      details: { fields: Object.keys(input) },
    });
    return toCustomer(row);
  });
}

/** Throws 412 unless `ifMatch` (when sent) matches the customer's settings as stored. */
export function checkCustomerIfMatch(customer: CustomerRow, ifMatch: string | undefined): void {
  checkIfMatch(ifMatch, customerEtag(toCustomer(customer)), 'customer');
}

export async function deleteCustomer(
  db: Database,
  context: RequestContext,
  id: string,
  options: { ifMatch?: string | undefined } = {},
): Promise<void> {
  await db.transaction(async (tx) => {
    const current = await findCustomerRow(tx, id, { forUpdate: true });
    if (!current) throw notFound(id);
    checkCustomerIfMatch(current, options.ifMatch);
    // Agents, credentials, keys, messages and deliveries go with it (foreign keys cascade).
    await tx.delete(customers).where(eq(customers.id, id));
    await recordAudit(tx, context, {
      action: 'customer.delete',
      targetType: 'customer',
      targetId: current.id,
      customerId: id,
      details: { name: current.name },
    });
  });
}

/** Revokes every active key of the customer and issues a new one, at once and atomically. */
export async function rotateCustomerKey(
  db: Database,
  context: RequestContext,
  id: string,
): Promise<{ customer: Customer; apiKey: string }> {
  const key = generateApiKey();
  return db.transaction(async (tx) => {
    const current = await findCustomerRow(tx, id, { forUpdate: true });
    if (!current) throw notFound(id);
    const revoked = await tx
      .update(apiKeys)
      .set({ revokedAt: new Date() })
      .where(and(eq(apiKeys.customerId, id), isNull(apiKeys.revokedAt)))
      .returning({ prefix: apiKeys.prefix });
    await tx.insert(apiKeys).values({ customerId: id, prefix: key.prefix, hash: key.hash });
    await recordAudit(tx, context, {
      action: 'customer.rotate_key',
      targetType: 'customer',
      targetId: current.id,
      customerId: id,
      details: { revokedKeyPrefixes: revoked.map((row) => row.prefix), keyPrefix: key.prefix },
    });
    return { customer: toCustomer(current), apiKey: key.key };
  });
}
