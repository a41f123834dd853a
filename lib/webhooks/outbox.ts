import { and, asc, isNull, lte } from 'drizzle-orm';
import type { Database } from '../db/client';
import { webhookDeliveries } from '../db/schema';
import type { SendEvent } from '../jobs';
import { markDeliveryEventsSent } from './deliveries';
import { deliveryRequested } from './settings';

/** Rows younger than this are left to the caller that is still sending their event. */
export const WEBHOOK_OUTBOX_GRACE_MS = 30_000;
/** Events sent per sweep; the next sweep takes the rest. */
export const WEBHOOK_OUTBOX_BATCH = 500;

/**
 * The webhook outbox sweep: stored deliveries whose event the engine never took (it refused every
 * retry of the step that stored them, or the process died between the write and the send) get it now,
 * with the same `delivery-<id>` id, so one the engine did take is dropped instead of delivered twice.
 * Rows that ended without it (a refused test ping or redelivery, marked failed) are only marked.
 * Throws when the send fails (the cron retries, and the next tick finds the rows again).
 */
export async function sweepWebhookOutbox(
  db: Database,
  sendEvent: SendEvent,
  now: Date,
  options: { graceMs?: number; limit?: number } = {},
): Promise<{ resent: number; marked: number }> {
  const olderThan = new Date(now.getTime() - (options.graceMs ?? WEBHOOK_OUTBOX_GRACE_MS));
  const rows = await db
    .select({
      id: webhookDeliveries.id,
      customerId: webhookDeliveries.customerId,
      status: webhookDeliveries.status,
    })
    .from(webhookDeliveries)
    .where(and(isNull(webhookDeliveries.eventSentAt), lte(webhookDeliveries.createdAt, olderThan)))
    .orderBy(asc(webhookDeliveries.createdAt))
    .limit(options.limit ?? WEBHOOK_OUTBOX_BATCH);
  if (rows.length === 0) return { resent: 0, marked: 0 };

  const unsent = rows.filter((row) => row.status === 'pending');
  if (unsent.length > 0) await sendEvent(unsent.map(deliveryRequested));
  await markDeliveryEventsSent(
    db,
    rows.map((row) => row.id),
    now,
  );
  return { resent: unsent.length, marked: rows.length - unsent.length };
}
