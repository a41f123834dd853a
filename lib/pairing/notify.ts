import { eq } from 'drizzle-orm';
import { agents, pairingRequests } from '../db/schema';
import { agentTelegramApi, type SendDeps } from '../reply/send';
import { type SendFailure, sendFailureOf } from '../telegram/errors';
import { pairingApprovedMessage } from './messages';

/** The event the approve route sends; functions/events.ts declares it. */
export const PAIRING_APPROVED = 'agent/pairing.approved';

export type PairingNoticeResult = { status: 'sent' | 'no_token' | 'not_found' } | SendFailure;

/** Tells the Telegram user their pairing code was approved, in the chat they asked from. */
export async function notifyPairingApproved(
  deps: SendDeps,
  input: { agentId: string; pairingRequestId: string },
): Promise<PairingNoticeResult> {
  const [row] = await deps.db
    .select({ chatId: pairingRequests.chatId, agentName: agents.name })
    .from(pairingRequests)
    .innerJoin(agents, eq(agents.id, pairingRequests.agentId))
    .where(eq(pairingRequests.id, input.pairingRequestId));
  if (!row) return { status: 'not_found' };
  const api = await agentTelegramApi(deps, input.agentId);
  if (!api) return { status: 'no_token' };
  try {
    await api.sendMessage(row.chatId, pairingApprovedMessage(row.agentName));
    return { status: 'sent' };
  } catch (error) {
    return sendFailureOf(error);
  }
}
