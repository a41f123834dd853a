import { and, desc, eq, inArray, isNull, type SQL, sql } from 'drizzle-orm';
import type { Dispatcher } from 'undici';
import type { Keyring } from '../crypto';
import type { Database, Queryable } from '../db/client';
import { preparedQuery } from '../db/prepared';
import { customers, webhookDeliveries, webhookDeliveryAttempts } from '../db/schema';
import { AppError } from '../errors';
import { type CursorPage, cursorCondition, isUuid, pageOf } from '../pagination';
import { webhookRetryDelayMs } from './backoff';
import type { DeliveryResult } from './deliver';
import { buildWebhookEvent, type WebhookEventData, type WebhookEventType } from './events';
import { signingSecretsOf } from './secrets';
import { sendWebhookAttempt } from './send';

export type DeliveryRow = typeof webhookDeliveries.$inferSelect;
type AttemptRow = typeof webhookDeliveryAttempts.$inferSelect;

/** The agent id a `ping` carries: it is about the endpoint, not an agent. */
export const PING_AGENT_ID = '00000000-0000-0000-0000-000000000000';

export interface CustomerEventInput<T extends WebhookEventType = WebhookEventType> {
  customerId: string;
  type: T;
  agentId: string;
  data: WebhookEventData<T>;
  /** The event id; the producer's own (an Inngest event id, say) keeps retries of the producer idempotent. */
  eventId?: string;
  /** When the event happened. */
  occurredAt: Date;
}

/** The customer's current webhook URL; read for every event a customer may get, so built once. */
const readWebhookUrl = preparedQuery((db) =>
  db
    .select({ webhookUrl: customers.webhookUrl })
    .from(customers)
    .where(eq(customers.id, sql.placeholder('customerId')))
    .prepare('webhooks_read_url'),
);

/**
 * Stores the event as a pending delivery to the customer's current URL. Undefined when the customer
 * has no webhook URL (nothing to deliver). Recording the same event id twice returns the first row.
 * `eventSentAt` is for the delivery run itself recording it: its event is in the engine already.
 */
export async function recordCustomerEvent(
  db: Queryable,
  input: CustomerEventInput,
  options: { eventSentAt?: Date } = {},
): Promise<DeliveryRow | undefined> {
  const [customer] = await readWebhookUrl(db).execute({ customerId: input.customerId });
  if (!customer?.webhookUrl) return undefined;
  const { event, body } = buildWebhookEvent(input.type, input.agentId, input.data as never, {
    ...(input.eventId ? { id: input.eventId } : {}),
    now: input.occurredAt,
  });
  const [inserted] = await db
    .insert(webhookDeliveries)
    .values({
      customerId: input.customerId,
      eventId: event.id,
      eventType: event.type,
      agentId: input.agentId === PING_AGENT_ID ? null : input.agentId,
      payload: JSON.parse(body) as Record<string, unknown>,
      body,
      url: customer.webhookUrl,
      eventSentAt: options.eventSentAt ?? null,
    })
    .onConflictDoNothing()
    .returning();
  if (inserted) return inserted;
  const [existing] = await db
    .select()
    .from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.eventId, event.id), eq(webhookDeliveries.customerId, input.customerId)))
    .orderBy(webhookDeliveries.createdAt)
    .limit(1);
  return existing;
}

/** The engine took the deliveries' events (or the sweep found them ended): the outbox sweep leaves the rows alone. */
export async function markDeliveryEventsSent(db: Queryable, deliveryIds: string[], at: Date): Promise<void> {
  await db
    .update(webhookDeliveries)
    .set({ eventSentAt: at })
    .where(and(inArray(webhookDeliveries.id, deliveryIds), isNull(webhookDeliveries.eventSentAt)));
}

/** A new delivery of an earlier one's event (same id and body), to the customer's current URL. */
export async function createRedelivery(
  db: Queryable,
  customerId: string,
  deliveryId: string,
): Promise<DeliveryRow> {
  const original = await findOwnDelivery(db, customerId, deliveryId);
  const [customer] = await readWebhookUrl(db).execute({ customerId });
  if (!customer?.webhookUrl) {
    throw new AppError('conflict', 'Set a webhook URL first (PUT /api/v1/webhook)', {
      details: { field: 'url' },
    });
  }
  const [row] = await db
    .insert(webhookDeliveries)
    .values({
      customerId,
      eventId: original.eventId,
      eventType: original.eventType,
      agentId: original.agentId,
      payload: original.payload,
      body: original.body,
      url: customer.webhookUrl,
      redeliveryOf: original.redeliveryOf ?? original.id,
    })
    .returning();
  if (!row) throw new Error('insert returned no row');
  return row;
}

export async function findOwnDelivery(
  db: Queryable,
  customerId: string,
  deliveryId: string,
): Promise<DeliveryRow> {
  const [row] = isUuid(deliveryId)
    ? await db
        .select()
        .from(webhookDeliveries)
        .where(and(eq(webhookDeliveries.id, deliveryId), eq(webhookDeliveries.customerId, customerId)))
    : [];
  if (!row) throw new AppError('delivery_not_found', `No delivery with id ${deliveryId}`);
  return row;
}

export interface DeliveryAttempt {
  attempt: number;
  statusCode: number | null;
  durationMs: number;
  responseExcerpt: string | null;
  error: string | null;
  nextAttemptAt: string | null;
  createdAt: string;
}

export interface Delivery {
  id: string;
  eventId: string;
  eventType: string;
  agentId: string | null;
  url: string | null;
  status: DeliveryRow['status'];
  attempts: number;
  lastStatusCode: number | null;
  lastDurationMs: number | null;
  lastResponseExcerpt: string | null;
  lastError: string | null;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
  redeliveryOf: string | null;
  payload: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

export function toDelivery(row: DeliveryRow): Delivery {
  return {
    id: row.id,
    eventId: row.eventId,
    eventType: row.eventType,
    agentId: row.agentId,
    url: row.url,
    status: row.status,
    attempts: row.attempts,
    lastStatusCode: row.lastStatusCode,
    lastDurationMs: row.lastDurationMs,
    lastResponseExcerpt: row.lastResponseExcerpt,
    lastError: row.lastError,
    nextAttemptAt: row.nextAttemptAt?.toISOString() ?? null,
    deliveredAt: row.deliveredAt?.toISOString() ?? null,
    redeliveryOf: row.redeliveryOf,
    payload: row.payload,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export function toAttempt(row: AttemptRow): DeliveryAttempt {
  return {
    attempt: row.attempt,
    statusCode: row.statusCode,
    durationMs: row.durationMs,
    responseExcerpt: row.responseExcerpt,
    error: row.error,
    nextAttemptAt: row.nextAttemptAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
  };
}

export async function listDeliveries(
  db: Queryable,
  customerId: string,
  filter: { status?: DeliveryRow['status'] | undefined; limit: number; cursor?: string | undefined },
): Promise<CursorPage<Delivery>> {
  const conditions: SQL[] = [eq(webhookDeliveries.customerId, customerId)];
  if (filter.status) conditions.push(eq(webhookDeliveries.status, filter.status));
  const after = cursorCondition(webhookDeliveries, filter.cursor);
  if (after) conditions.push(after);
  const rows = await db
    .select()
    .from(webhookDeliveries)
    .where(and(...conditions))
    .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id))
    .limit(filter.limit + 1);
  return pageOf(rows, filter.limit, toDelivery);
}

export async function getDeliveryWithAttempts(db: Queryable, customerId: string, deliveryId: string) {
  const row = await findOwnDelivery(db, customerId, deliveryId);
  const attempts = await db
    .select()
    .from(webhookDeliveryAttempts)
    .where(eq(webhookDeliveryAttempts.deliveryId, row.id))
    .orderBy(webhookDeliveryAttempts.attempt);
  return { ...toDelivery(row), attemptLog: attempts.map(toAttempt) };
}

export interface AttemptDecision {
  outcome: DeliveryResult['outcome'] | 'skipped';
  /** When the engine should try again (outcome 'retry' with attempts left). */
  retryInMs?: number;
  error?: string;
}

/**
 * One delivery attempt, recorded: signs with the customer's current secrets, POSTs, stores the
 * attempt and the delivery's new state. `attempt` counts from 1. The caller (an Inngest step)
 * turns `retryInMs` into a RetryAfterError.
 */
export async function attemptDelivery(
  db: Database,
  keyring: Keyring,
  input: { deliveryId: string; attempt: number; allowPrivate: boolean; now: Date; dispatcher?: Dispatcher },
): Promise<AttemptDecision> {
  const [row] = await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, input.deliveryId));
  if (!row || row.status === 'succeeded' || row.status === 'failed') return { outcome: 'skipped' };
  const [customer] = await db.select().from(customers).where(eq(customers.id, row.customerId));
  const secrets = customer ? signingSecretsOf(keyring, customer, input.now) : undefined;
  // The customer's URL now, not the one the event was recorded with: an endpoint cleared or replaced
  // while an event retries (a domain given up, a leaked URL) must not get it any more.
  const url = customer?.webhookUrl;
  if (!customer || !secrets || !url) {
    const error = url ? 'no signing secret' : 'webhook URL cleared before the event was delivered';
    await db
      .update(webhookDeliveries)
      .set({ status: 'failed', lastError: error, nextAttemptAt: null })
      .where(eq(webhookDeliveries.id, row.id));
    return { outcome: 'give_up', error };
  }
  const result = await sendWebhookAttempt({
    url,
    id: row.eventId,
    body: row.body,
    secrets,
    allowPrivate: input.allowPrivate,
    now: input.now,
    ...(input.dispatcher ? { dispatcher: input.dispatcher } : {}),
  });
  const retryInMs =
    result.outcome === 'retry' ? webhookRetryDelayMs(input.attempt, result.retryAfterMs) : undefined;
  const nextAttemptAt = retryInMs !== undefined ? new Date(input.now.getTime() + retryInMs) : null;
  const status =
    result.outcome === 'success'
      ? 'succeeded'
      : result.outcome === 'retry' && retryInMs !== undefined
        ? 'retrying'
        : 'failed';
  await db.transaction(async (tx) => {
    await tx.insert(webhookDeliveryAttempts).values({
      deliveryId: row.id,
      attempt: input.attempt,
      statusCode: result.statusCode ?? null,
      durationMs: Math.round(result.durationMs),
      responseExcerpt: result.responseExcerpt ?? null,
      error: result.error ?? null,
      nextAttemptAt,
    });
    await tx
      .update(webhookDeliveries)
      .set({
        url,
        status,
        attempts: input.attempt,
        lastStatusCode: result.statusCode ?? null,
        lastDurationMs: Math.round(result.durationMs),
        lastResponseExcerpt: result.responseExcerpt ?? null,
        lastError: result.error ?? null,
        nextAttemptAt,
        deliveredAt: result.outcome === 'success' ? input.now : null,
      })
      .where(eq(webhookDeliveries.id, row.id));
  });
  return {
    outcome: result.outcome,
    ...(retryInMs !== undefined ? { retryInMs } : {}),
    ...(result.error ? { error: result.error } : {}),
  };
}
