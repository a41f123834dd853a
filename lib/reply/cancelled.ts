import { and, eq, inArray } from 'drizzle-orm';
import type { Database } from '../db/client';
import { telegramMessages } from '../db/schema';

/**
 * After a reply run was cancelled (by the operator, in the Inngest dashboard or the admin API): the
 * message it held, claimed (`processing`) or marked while it waited for its turn (`received` with the
 * run's id), becomes `failed`. Left as it was, every later message of the chat would wait for it, up
 * to two minutes each, for ten minutes. `failed` is what a replay of the run claims again. A message
 * the run had settled, or one another run holds, is left alone. Returns whether one was released.
 */
export async function releaseCancelledReply(
  db: Database,
  input: { messageId: string; runId: string },
): Promise<boolean> {
  const released = await db
    .update(telegramMessages)
    .set({ status: 'failed' })
    .where(
      and(
        eq(telegramMessages.id, input.messageId),
        eq(telegramMessages.replyRunId, input.runId),
        inArray(telegramMessages.status, ['processing', 'received']),
      ),
    )
    .returning({ id: telegramMessages.id });
  return released.length > 0;
}
