import { and, asc, eq, isNull, lte } from 'drizzle-orm';
import type { Database } from '../db/client';
import { telegramMessages } from '../db/schema';
import type { SendEvent } from '../jobs';
import { markEventsSent, updateReceivedEvent } from './ingress';

/** Rows younger than this are left to the ingress request that is still sending their event. */
export const OUTBOX_GRACE_MS = 30_000;
/** Events sent per sweep; the next sweep takes the rest. */
export const OUTBOX_BATCH = 500;

/**
 * The outbox sweep: stored inbound updates whose event was never accepted (the process died, or the
 * engine refused, between the write and the send) get their event now, with the same id as the first
 * try, so an event that did get through is dropped by the engine instead of answered twice. Rows the
 * reply pipeline already handled are only marked. Throws when the send fails (the cron retries).
 */
export async function sweepTelegramOutbox(
  db: Database,
  sendEvent: SendEvent,
  now: Date,
  options: { graceMs?: number; limit?: number } = {},
): Promise<{ resent: number; marked: number }> {
  const olderThan = new Date(now.getTime() - (options.graceMs ?? OUTBOX_GRACE_MS));
  const rows = await db
    .select({
      id: telegramMessages.id,
      agentId: telegramMessages.agentId,
      customerId: telegramMessages.customerId,
      chatId: telegramMessages.chatId,
      updateId: telegramMessages.updateId,
      status: telegramMessages.status,
    })
    .from(telegramMessages)
    .where(
      and(
        isNull(telegramMessages.eventSentAt),
        eq(telegramMessages.direction, 'inbound'),
        lte(telegramMessages.createdAt, olderThan),
      ),
    )
    .orderBy(asc(telegramMessages.createdAt))
    .limit(options.limit ?? OUTBOX_BATCH);
  if (rows.length === 0) return { resent: 0, marked: 0 };

  const pending = rows.filter((row) => row.status === 'received' && row.updateId !== null);
  if (pending.length > 0) {
    await sendEvent(
      pending.map((row) =>
        updateReceivedEvent({
          agentId: row.agentId,
          customerId: row.customerId,
          messageId: row.id,
          chatId: row.chatId,
          updateId: row.updateId as number,
        }),
      ),
    );
  }
  await markEventsSent(
    db,
    rows.map((row) => row.id),
    now,
  );
  return { resent: pending.length, marked: rows.length - pending.length };
}
