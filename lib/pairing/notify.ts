import { and, eq, isNull } from 'drizzle-orm';
import { agents, pairingRequests } from '../db/schema';
import { agentTelegramApi, type SendDeps } from '../reply/send';
import { type SendFailure, sendFailureOf } from '../telegram/errors';
import { pairingApprovedMessage } from './messages';

/** The event the approve route sends; functions/events.ts declares it. */
export const PAIRING_APPROVED = 'agent/pairing.approved';

export type PairingNoticeResult =
  | { status: 'sent' | 'already_sent' | 'no_token' | 'not_found' | 'not_approved' }
  | SendFailure;

/**
 * Tells the Telegram user their pairing code was approved, in the chat they asked from, once: a sent
 * notice is recorded (`notified_at`), and a request that has one is not notified again. The approve
 * route sends its event again on a retried approve (same id, which the engine drops within its 24 h
 * dedupe window); this record covers a copy that comes after the window.
 * Callers run one notice per request at a time (the function's concurrency key), so the check and the
 * record cannot interleave; a crash between the send and the record may still send twice.
 */
export async function notifyPairingApproved(
  deps: SendDeps,
  input: { agentId: string; pairingRequestId: string },
): Promise<PairingNoticeResult> {
  const [row] = await deps.db
    .select({
      chatId: pairingRequests.chatId,
      status: pairingRequests.status,
      notifiedAt: pairingRequests.notifiedAt,
      agentName: agents.name,
    })
    .from(pairingRequests)
    .innerJoin(agents, eq(agents.id, pairingRequests.agentId))
    .where(and(eq(pairingRequests.id, input.pairingRequestId), eq(pairingRequests.agentId, input.agentId)));
  if (!row) return { status: 'not_found' };
  if (row.status !== 'approved') return { status: 'not_approved' };
  if (row.notifiedAt) return { status: 'already_sent' };
  const api = await agentTelegramApi(deps, input.agentId);
  if (!api) return { status: 'no_token' };
  try {
    await api.sendMessage(row.chatId, pairingApprovedMessage(row.agentName));
  } catch (error) {
    return sendFailureOf(error);
  }
  await deps.db
    .update(pairingRequests)
    .set({ notifiedAt: new Date() })
    .where(and(eq(pairingRequests.id, input.pairingRequestId), isNull(pairingRequests.notifiedAt)));
  return { status: 'sent' };
}
