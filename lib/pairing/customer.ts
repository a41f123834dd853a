import type { RequestContext } from '../actor';
import { getOwnAgent } from '../agents';
import { recordAudit } from '../audit';
import type { Database } from '../db/client';
import type { AppError } from '../errors';
import { type CursorPage, decodeCursor, pageOf } from '../pagination';
import type { PairingRequestView } from '../schemas/pairing';
import { approvePairing, pairingDecisionError, rejectPairing } from './decide';
import { listPairingRequests, type PairingRequest, type PairingStatus } from './requests';

export function toPairingRequestView(row: PairingRequest): PairingRequestView {
  return {
    id: row.id,
    code: row.code,
    status: row.status,
    telegramUserId: row.telegramUserId,
    username: row.username,
    firstName: row.firstName,
    chatId: row.chatId,
    expiresAt: row.expiresAt.toISOString(),
    decidedAt: row.decidedAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
  };
}

/** One of the customer's agents' pairing requests, newest first (404 for another tenant's agent). */
export async function listOwnPairingRequests(
  db: Database,
  customerId: string,
  agentId: string,
  query: { limit: number; cursor?: string | undefined; status?: PairingStatus | undefined },
): Promise<CursorPage<PairingRequestView>> {
  await getOwnAgent(db, customerId, agentId);
  const rows = await listPairingRequests(db, agentId, {
    status: query.status,
    limit: query.limit + 1,
    before: query.cursor ? decodeCursor(query.cursor) : undefined,
  });
  return pageOf(rows, query.limit, toPairingRequestView);
}

/**
 * Approves or rejects a pending code of the customer's agent, audited in the decision's transaction
 * (no decision without its audit row). Approval adds the sender's numeric id to `telegramAllowFrom`.
 * Approving a code that is already approved is idempotent: the same request again, not audited again
 * (`changed: false`), so a client retrying after a failed answer gets it and the route can send the
 * notification event again (same id: the engine keeps one). An unknown or expired code, a reject of a
 * decided code and an approve of a rejected one are a 404 that says which.
 */
export async function decideOwnPairingRequest(
  db: Database,
  context: RequestContext,
  input: { customerId: string; agentId: string; code: string; decision: 'approve' | 'reject'; now: Date },
): Promise<{ request: PairingRequest; changed: boolean }> {
  await getOwnAgent(db, input.customerId, input.agentId);
  const decide = input.decision === 'approve' ? approvePairing : rejectPairing;
  const result = await decide(
    db,
    { agentId: input.agentId, code: input.code, now: input.now },
    (tx, request) =>
      recordAudit(tx, context, {
        action: `pairing.${input.decision}`,
        targetType: 'pairing_request',
        targetId: request.id,
        customerId: input.customerId,
        details: { agentId: input.agentId, telegramUserId: request.telegramUserId },
      }),
  );
  if (
    input.decision === 'approve' &&
    result.status === 'already_decided' &&
    result.request.status === 'approved'
  ) {
    return { request: result.request, changed: false };
  }
  if (result.status !== 'approved' && result.status !== 'rejected') {
    throw pairingDecisionError(result) as AppError;
  }
  return { request: result.request, changed: true };
}
