import { createHash } from 'node:crypto';
import { and, eq, lt, sql } from 'drizzle-orm';
import type { Queryable } from './db/client';
import { adminIdempotencyKeys, idempotencyKeys } from './db/schema';
import { AppError } from './errors';

/** How long a create request's Idempotency-Key answers its retries with the first answer. */
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 60 * 60 * 1000;

/** What a create request's Idempotency-Key identifies: who sent it, for what, with which body. */
export interface IdempotentRequest {
  customerId: string;
  key: string;
  operation: string;
  /** The validated request body: its hash tells a retry from another request under the same key. */
  input: unknown;
}

/** What tells a retry (the same operation and body) from another request under the same key. */
export function requestHash(operation: string, input: unknown): string {
  return createHash('sha256').update(operation).update('\0').update(JSON.stringify(input)).digest('hex');
}

/**
 * The answer stored for `request`'s key, if it was used in the last 24 hours; a key used for another
 * operation or with another body is refused (422), since answering either would be wrong. Call it in
 * the transaction that will store the new answer, after locking what serialises the operation, so two
 * requests with one key cannot both miss.
 */
export async function findIdempotentResponse<T>(
  tx: Queryable,
  request: IdempotentRequest,
  now = Date.now(),
): Promise<T | undefined> {
  const [row] = await tx
    .select()
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.customerId, request.customerId), eq(idempotencyKeys.key, request.key)));
  if (!row || !isLive(row, now)) return undefined;
  checkSameRequest(row, request);
  return row.response as T;
}

/** Whether a key's use of `createdAt` still answers its retries at `now`. */
export function isLive(use: { createdAt: Date }, now: number): boolean {
  return use.createdAt.getTime() > now - IDEMPOTENCY_KEY_TTL_MS;
}

/** Refuses (422) a live key's use by another operation or with another body: answering either would be wrong. */
export function checkSameRequest(
  use: { operation: string; requestHash: string },
  request: Pick<IdempotentRequest, 'operation' | 'input'>,
): void {
  if (
    use.operation === request.operation &&
    use.requestHash === requestHash(request.operation, request.input)
  ) {
    return;
  }
  throw new AppError(
    'idempotency_key_reused',
    'Idempotency-Key was already used for another request in the last 24 hours; send a new key',
    { details: { field: 'Idempotency-Key' } },
  );
}

/**
 * Stores `response` as the answer to `request`'s key, replacing an expired use of the key; the
 * customer's other expired keys go too, so a customer's keys are at most a day of its requests (and
 * those of its last day with any, until the next).
 */
export async function storeIdempotentResponse(
  tx: Queryable,
  request: IdempotentRequest,
  response: unknown,
  now = Date.now(),
): Promise<void> {
  const expired = new Date(now - IDEMPOTENCY_KEY_TTL_MS);
  await tx
    .delete(idempotencyKeys)
    .where(and(eq(idempotencyKeys.customerId, request.customerId), lt(idempotencyKeys.createdAt, expired)));
  await tx
    .insert(idempotencyKeys)
    .values({
      customerId: request.customerId,
      key: request.key,
      operation: request.operation,
      requestHash: requestHash(request.operation, request.input),
      response,
      createdAt: new Date(now),
    })
    .onConflictDoUpdate({
      target: [idempotencyKeys.customerId, idempotencyKeys.key],
      set: {
        operation: sql`excluded.operation`,
        requestHash: sql`excluded.request_hash`,
        response: sql`excluded.response`,
        createdAt: sql`excluded.created_at`,
      },
    });
}

/**
 * Deletes every Idempotency-Key use past its 24 hours, customers' and the operator's: a key's own
 * next use purges its customer's, but a customer who sends no more keys would keep its last day's.
 */
export async function purgeExpiredIdempotencyKeys(db: Queryable, now = Date.now()): Promise<number> {
  const expired = new Date(now - IDEMPOTENCY_KEY_TTL_MS);
  const customers = await db
    .delete(idempotencyKeys)
    .where(lt(idempotencyKeys.createdAt, expired))
    .returning({ key: idempotencyKeys.key });
  const operator = await db
    .delete(adminIdempotencyKeys)
    .where(lt(adminIdempotencyKeys.createdAt, expired))
    .returning({ key: adminIdempotencyKeys.key });
  return customers.length + operator.length;
}
