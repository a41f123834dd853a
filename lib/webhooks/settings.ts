import { createHash } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import type { RequestContext } from '../actor';
import { recordAudit } from '../audit';
import type { ReadyConfig } from '../config';
import type { Keyring } from '../crypto';
import { findCustomerRow } from '../customers';
import type { Database, Queryable } from '../db/client';
import { customers, webhookDeliveries } from '../db/schema';
import { AppError } from '../errors';
import { findIdempotentResponse, storeIdempotentResponse } from '../idempotency';
import { type JobEvent, jobsUnavailable, type SendEvent } from '../jobs';
import {
  type CustomerEventInput,
  createRedelivery,
  type Delivery,
  type DeliveryRow,
  markDeliveryEventsSent,
  PING_AGENT_ID,
  recordCustomerEvent,
  toDelivery,
} from './deliveries';
import type { WebhookEventType } from './events';
import { readableCurrentSecret, rotateWebhookSecret } from './secrets';
import { validateWebhookUrl } from './ssrf';

type CustomerRow = typeof customers.$inferSelect;

export interface WebhookSettings {
  url: string | null;
  secretConfigured: boolean;
  /** Until when the secret before the last rotation still signs (alongside the current one). */
  previousSecretExpiresAt: string | null;
}

/** The event name the delivery function consumes for a stored delivery (see functions/events.ts). */
export const DELIVERY_REQUESTED = 'webhook/delivery.requested';
/** The event name that hands a new customer event to the delivery function (see functions/events.ts). */
export const CUSTOMER_EVENT_EMITTED = 'customer/event.emitted';

/**
 * The engine event that hands an agent event to the delivery function, for lib code that sends it
 * itself (functions use `customerEventEmitted.create`). `eventId` is the webhook event's id and, with
 * its prefix, the engine's dedupe id: a retried send is stored once.
 */
export function customerEventToSend(input: {
  customerId: string;
  agentId: string;
  type: WebhookEventType;
  data: Record<string, unknown>;
  eventId: string;
  at: Date;
}): JobEvent {
  const { at, ...event } = input;
  return {
    name: CUSTOMER_EVENT_EMITTED,
    id: `customer-event-${input.eventId}`,
    data: { ...event, occurredAt: at.toISOString() },
  };
}

export function toWebhookSettings(row: CustomerRow, now: Date): WebhookSettings {
  const expires = row.previousWebhookSecretExpiresAt;
  return {
    url: row.webhookUrl,
    secretConfigured: row.webhookSecretCiphertext !== null,
    previousSecretExpiresAt: expires && expires > now ? expires.toISOString() : null,
  };
}

/** The calling customer's row (locked when asked); gone means the key's customer was deleted meanwhile. */
async function ownCustomer(db: Queryable, customerId: string, options: { forUpdate?: boolean } = {}) {
  const row = await findCustomerRow(db, customerId, options);
  if (!row) throw new AppError('unauthorized', 'Invalid API key');
  return row;
}

export async function getWebhookSettings(
  db: Database,
  customerId: string,
  now: Date,
): Promise<WebhookSettings> {
  return toWebhookSettings(await ownCustomer(db, customerId), now);
}

/** Checks a webhook URL as saved (https in production, no credentials, no literal private address). */
export function checkWebhookUrl(config: ReadyConfig, url: string, field = 'body.webhookUrl'): void {
  validateWebhookUrl(url, {
    production: config.isProduction,
    allowPrivate: config.webhooks.allowPrivateTargets,
    field,
  });
}

export async function setWebhookUrl(
  db: Database,
  config: ReadyConfig,
  context: RequestContext,
  customerId: string,
  url: string | null,
): Promise<WebhookSettings> {
  if (url !== null) checkWebhookUrl(config, url, 'body.url');
  return db.transaction(async (tx) => {
    await ownCustomer(tx, customerId, { forUpdate: true });
    const [row] = await tx
      .update(customers)
      .set({ webhookUrl: url })
      .where(eq(customers.id, customerId))
      .returning();
    if (!row) throw new AppError('unauthorized', 'Invalid API key');
    await recordAudit(tx, context, {
      action: url === null ? 'webhook.clear' : 'webhook.set',
      targetType: 'customer',
      targetId: customerId,
      customerId,
      details: url === null ? {} : { host: new URL(url).host },
    });
    return toWebhookSettings(row, new Date());
  });
}

/**
 * A new signing secret, the old one signing alongside for `graceMs`. With an `idempotencyKey`, a
 * rotation sent again within 24 hours (its answer lost) answers the secret it made instead of rotating
 * once more, which would end the grace of the secret receivers still verify with. Only a hash of the
 * secret is kept with the key; the secret itself is read back from where it is stored, encrypted.
 */
export async function rotateCustomerWebhookSecret(
  db: Database,
  keyring: Keyring,
  context: RequestContext,
  customerId: string,
  graceMs: number,
  options: { idempotencyKey?: string | undefined } = {},
): Promise<{ webhook: WebhookSettings; secret: string; replayed: boolean }> {
  const idempotent = options.idempotencyKey
    ? { customerId, key: options.idempotencyKey, operation: 'webhook.rotate_secret', input: { graceMs } }
    : undefined;
  return db.transaction(async (tx) => {
    const row = await ownCustomer(tx, customerId, { forUpdate: true });
    const now = new Date();
    const replay = idempotent && (await findIdempotentResponse<{ secretSha256: string }>(tx, idempotent));
    if (replay) {
      const current = readableCurrentSecret(keyring, row);
      if (current === undefined || sha256Hex(current) !== replay.secretSha256) {
        throw new AppError(
          'conflict',
          'The secret this Idempotency-Key made has been rotated again since; use the latest rotation’s secret',
          { details: { field: 'Idempotency-Key' } },
        );
      }
      return { webhook: toWebhookSettings(row, now), secret: current, replayed: true };
    }
    const {
      secret,
      previousExpiresAt,
      row: updated,
    } = await rotateWebhookSecret(tx, keyring, row, { graceMs, now });
    await recordAudit(tx, context, {
      action: 'webhook.rotate_secret',
      targetType: 'customer',
      targetId: customerId,
      customerId,
      details: { previousExpiresAt: previousExpiresAt?.toISOString() ?? null },
    });
    if (idempotent) await storeIdempotentResponse(tx, idempotent, { secretSha256: sha256Hex(secret) });
    return { webhook: toWebhookSettings(updated, now), secret, replayed: false };
  });
}

const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex');

/** Stores a signed `ping` and asks the delivery function to send it. */
export async function sendTestPing(
  db: Database,
  sendEvent: SendEvent,
  customerId: string,
): Promise<Delivery> {
  const row = await recordCustomerEvent(db, {
    customerId,
    type: 'ping',
    agentId: PING_AGENT_ID,
    data: {},
    occurredAt: new Date(),
  });
  if (!row) {
    throw new AppError('conflict', 'Set a webhook URL first (PUT /api/v1/webhook)', {
      details: { field: 'url' },
    });
  }
  return toDelivery(await queueRequestedDelivery(db, sendEvent, row));
}

/**
 * Asks the delivery function to send a delivery a request just made. When the engine does not take
 * it, the row is marked failed (it would otherwise stay pending with nothing to send it) and the
 * caller gets a 503; a retry of the request makes a new delivery. Only a row no attempt has touched:
 * a send that timed out after the engine took the event may already have delivered it, and then the
 * request succeeded.
 */
async function queueRequestedDelivery(
  db: Queryable,
  sendEvent: SendEvent,
  row: DeliveryRow,
): Promise<DeliveryRow> {
  try {
    await sendDelivery(db, sendEvent, row);
    return row;
  } catch (error) {
    let marked: DeliveryRow[];
    try {
      marked = await db
        .update(webhookDeliveries)
        .set({ status: 'failed', lastError: NOT_QUEUED, nextAttemptAt: null })
        .where(
          and(
            eq(webhookDeliveries.id, row.id),
            eq(webhookDeliveries.status, 'pending'),
            eq(webhookDeliveries.attempts, 0),
          ),
        )
        .returning();
    } catch (markError) {
      // Still the 503 the engine's refusal is; the log gets both errors.
      throw jobsUnavailable(new AggregateError([error, markError], 'send and mark failed'));
    }
    if (marked.length > 0) throw jobsUnavailable(error);
    // An attempt already touched the row: the engine took the event before the send gave up on its
    // answer, so the delivery is under way (or done), as the caller asked.
    await markDeliveryEventsSent(db, [row.id], new Date()).catch(() => undefined);
    const [current] = await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, row.id));
    return current ?? row;
  }
}

const NOT_QUEUED = 'not sent: the jobs engine did not take the delivery (the request answered 503)';

/**
 * Sends the delivery's event, then marks the row as sent. Throws when the send fails: the row keeps
 * `event_sent_at` empty, and the webhook outbox sweep sends it if no retry of the caller does. A failed
 * mark is let go: the sweep then sends the event again with the same id, which the engine drops.
 */
async function sendDelivery(db: Queryable, sendEvent: SendEvent, row: DeliveryRow): Promise<void> {
  await sendEvent([deliveryRequested(row)]);
  await markDeliveryEventsSent(db, [row.id], new Date()).catch(() => undefined);
}

export function deliveryRequested(row: Pick<DeliveryRow, 'id' | 'customerId'>): JobEvent {
  return {
    name: DELIVERY_REQUESTED,
    id: `delivery-${row.id}`,
    data: { customerId: row.customerId, deliveryId: row.id },
  };
}

/**
 * Stores a customer event as a pending delivery and asks the delivery function to send it; nothing
 * at all (no row, no job) when the customer has no webhook URL. Idempotent by `eventId`: a retried
 * caller finds the first row and the same `delivery-<id>` event, which the engine drops.
 */
export async function emitCustomerEvent<T extends WebhookEventType>(
  db: Queryable,
  sendEvent: SendEvent,
  input: CustomerEventInput<T>,
): Promise<DeliveryRow | undefined> {
  const row = await recordCustomerEvent(db, input);
  if (!row) return undefined;
  await sendDelivery(db, sendEvent, row);
  return row;
}

/** Sends an earlier delivery's event again (same event id and body) to the current URL. */
export async function redeliver(
  db: Database,
  sendEvent: SendEvent,
  context: RequestContext,
  customerId: string,
  deliveryId: string,
): Promise<Delivery> {
  const created = await createRedelivery(db, customerId, deliveryId);
  const audit = (outcome: 'success' | 'failure') =>
    recordAudit(db, context, {
      action: 'webhook.redeliver',
      targetType: 'webhook_delivery',
      targetId: created.id,
      customerId,
      outcome,
      details: {
        redeliveryOf: created.redeliveryOf,
        eventId: created.eventId,
        ...(outcome === 'failure' ? { code: 'service_unavailable' } : {}),
      },
    });
  let queued: DeliveryRow;
  try {
    queued = await queueRequestedDelivery(db, sendEvent, created);
  } catch (error) {
    // A redelivery the engine refused is audited as the failure it is, not as done.
    await audit('failure').catch(() => undefined);
    throw error;
  }
  await audit('success');
  return toDelivery(queued);
}
