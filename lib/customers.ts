import { randomUUID } from 'node:crypto';
import { and, desc, eq, isNull, lt, type SQL, sql } from 'drizzle-orm';
import type { RequestContext } from './actor';
import { generateApiKey } from './api-keys';
import { recordAudit } from './audit';
import { changedFields } from './changed-fields';
import type { Keyring } from './crypto';
import type { Database, Queryable } from './db/client';
import { adminIdempotencyKeys, apiKeys, customers } from './db/schema';
import { AppError } from './errors';
import { checkIfMatch, customerEtag } from './etag';
import { checkSameRequest, IDEMPOTENCY_KEY_TTL_MS, isLive, requestHash } from './idempotency';
import { type CursorPage, cursorCondition, isUuid, pageOf } from './pagination';
import {
  type CreateCustomerInput,
  type Customer,
  PLAN_MAX_AGENTS,
  type UpdateCustomerInput,
} from './schemas/customers';
import { currentSecretColumns, readableCurrentSecret } from './webhooks/secrets';
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

/** What a customer's creation answers: the customer, its API key and its webhook signing secret. */
export interface CreatedCustomer {
  customer: Customer;
  apiKey: string;
  webhookSecret: string;
}

/**
 * Creates a customer with its first API key and webhook signing secret. With an `idempotencyKey`, a
 * create sent again within 24 hours (its answer lost) answers the customer it made instead of making
 * another; see `answerCreateAgain` for the key it carries.
 */
export async function createCustomer(
  db: Database,
  context: RequestContext,
  keyring: Keyring,
  input: CreateCustomerInput,
  options: { idempotencyKey?: string | undefined } = {},
): Promise<CreatedCustomer & { replayed: boolean }> {
  const key = generateApiKey();
  const webhookSecret = generateWebhookSecret();
  // The id is chosen here because the signing secret is encrypted bound to it, in the same insert.
  const id = randomUUID();
  const idempotencyKey = options.idempotencyKey;
  return db.transaction(async (tx) => {
    if (idempotencyKey !== undefined) {
      const now = Date.now();
      // Nothing else serialises two creates: the key's own lock makes the second wait for the first.
      await tx.execute(sql`select pg_advisory_xact_lock(${CREATE_KEY_LOCK}, hashtext(${idempotencyKey}))`);
      const [use] = await tx
        .select()
        .from(adminIdempotencyKeys)
        .where(eq(adminIdempotencyKeys.key, idempotencyKey));
      if (use && isLive(use, now)) {
        checkSameRequest(use, { operation: CREATE_OPERATION, input });
        return { ...(await answerCreateAgain(tx, context, keyring, use)), replayed: true };
      }
      await tx
        .delete(adminIdempotencyKeys)
        .where(lt(adminIdempotencyKeys.createdAt, new Date(now - IDEMPOTENCY_KEY_TTL_MS)));
    }
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
    const [issued] = await tx
      .insert(apiKeys)
      .values({ customerId: row.id, prefix: key.prefix, hash: key.hash })
      .returning({ id: apiKeys.id });
    await recordAudit(tx, context, {
      action: 'customer.create',
      targetType: 'customer',
      targetId: row.id,
      customerId: row.id,
      details: { plan: row.plan, maxAgents: row.maxAgents, keyPrefix: key.prefix },
    });
    if (idempotencyKey !== undefined) {
      const use = {
        operation: CREATE_OPERATION,
        requestHash: requestHash(CREATE_OPERATION, input),
        customerId: row.id,
        apiKeyId: issued?.id ?? null,
        createdAt: new Date(),
      };
      // Replacing the key's expired use, which the purge above can miss by the microseconds a Date lacks.
      await tx
        .insert(adminIdempotencyKeys)
        .values({ key: idempotencyKey, ...use })
        .onConflictDoUpdate({ target: adminIdempotencyKeys.key, set: use });
    }
    return { customer: toCustomer(row), apiKey: key.key, webhookSecret, replayed: false };
  });
}

const CREATE_OPERATION = 'customer.create';
/** The advisory lock class of customer-create Idempotency-Keys (two-key form: apart from the executor's). */
const CREATE_KEY_LOCK = 727_003;

/**
 * The answer to a create sent again. Its API key was kept only as a hash, so it cannot be given
 * again: while that key is active and has authenticated nothing (nobody received it), it is replaced
 * by a new one, which the retry answers with the same customer and signing secret. A key in use or
 * rotated since, or a customer deleted since, is a 409: revoking a key in use would break whoever
 * holds it.
 */
async function answerCreateAgain(
  tx: Queryable,
  context: RequestContext,
  keyring: Keyring,
  use: typeof adminIdempotencyKeys.$inferSelect,
): Promise<CreatedCustomer> {
  const row = use.customerId ? await findCustomerRow(tx, use.customerId, { forUpdate: true }) : undefined;
  if (!row) {
    throw new AppError('conflict', 'The customer this Idempotency-Key created has been deleted since', {
      details: { field: 'Idempotency-Key' },
    });
  }
  // Guarded in the statement: a first use committing meanwhile makes it revoke nothing.
  const revoked = use.apiKeyId
    ? await tx
        .update(apiKeys)
        .set({ revokedAt: new Date() })
        .where(and(eq(apiKeys.id, use.apiKeyId), isNull(apiKeys.revokedAt), isNull(apiKeys.lastUsedAt)))
        .returning({ prefix: apiKeys.prefix })
    : [];
  if (revoked.length === 0) {
    throw new AppError(
      'conflict',
      `The API key this Idempotency-Key's create issued has been used or replaced since, so it was received: ` +
        `GET /api/v1/admin/customers/${row.id}, and POST .../rotate-key if the key was lost`,
      { details: { field: 'Idempotency-Key' } },
    );
  }
  const webhookSecret = readableCurrentSecret(keyring, row);
  if (webhookSecret === undefined)
    throw new Error(`the webhook secret of customer ${row.id} does not decrypt`);
  const key = generateApiKey();
  const [issued] = await tx
    .insert(apiKeys)
    .values({ customerId: row.id, prefix: key.prefix, hash: key.hash })
    .returning({ id: apiKeys.id });
  await tx
    .update(adminIdempotencyKeys)
    .set({ apiKeyId: issued?.id ?? null })
    .where(eq(adminIdempotencyKeys.key, use.key));
  await recordAudit(tx, context, {
    action: 'customer.create_replayed',
    targetType: 'customer',
    targetId: row.id,
    customerId: row.id,
    details: { revokedKeyPrefixes: revoked.map((key) => key.prefix), keyPrefix: key.prefix },
  });
  return { customer: toCustomer(row), apiKey: key.key, webhookSecret };
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
